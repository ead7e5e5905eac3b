"""Published known-answer vectors for SM2, SM3 and SM4, with where each comes from.

Only data lives here; ``tests.vectors.ec`` holds an independent textbook implementation of the
sm2p256v1 curve arithmetic used to re-derive intermediate values (never by the product code).
"""

from __future__ import annotations

# --- SM3, GB/T 32905-2016 Appendix A (examples 1 and 2) ------------------------------------
SM3_ABC = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
SM3_ABCD_X16 = bytes.fromhex("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")

# --- HMAC-SM3, GM/T 0042-2015 Appendix D.3 (also in OpenSSL's evpmac_sm.txt) --------------
# (key, message, tag)
HMAC_SM3_GMT_0042: list[tuple[bytes, bytes, bytes]] = [
    (
        bytes(range(1, 33)),
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2,
        bytes.fromhex("ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a"),
    ),
    (
        bytes(range(1, 38)),
        b"\xcd" * 50,
        bytes.fromhex("220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae"),
    ),
    (
        b"\x0b" * 32,
        b"Hi There",
        bytes.fromhex("c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e"),
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        bytes.fromhex("2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882"),
    ),
]

# --- SM4, GB/T 32907-2016 Appendix A ------------------------------------------------------
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_PLAINTEXT = SM4_KEY
SM4_EXAMPLE_1 = bytes.fromhex("681edf34d206965e86b3e94f536e4246")
SM4_EXAMPLE_2_MILLION = bytes.fromhex("595298c7c6fd271f0402f804c33d3f66")

# draft-ribose-cfrg-sm4-10 (the SM4 Internet-Draft) §A.1 second block example,
# A.2.2 CBC (no padding) and A.2.5 CTR examples. (key, iv or None, plaintext, ciphertext)
SM4_DRAFT_ECB_2 = (
    bytes.fromhex("fedcba98765432100123456789abcdef"),
    bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
    bytes.fromhex("f766678f13f01adeac1b3ea955adb594"),
)
_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
_PT_CBC = bytes.fromhex("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")
_PT_CTR = bytes.fromhex(
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb"
)
SM4_DRAFT_CBC: list[tuple[bytes, bytes, bytes, bytes]] = [
    (
        SM4_KEY,
        _IV,
        _PT_CBC,
        bytes.fromhex("78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d"),
    ),
    (
        bytes.fromhex("fedcba98765432100123456789abcdef"),
        _IV,
        _PT_CBC,
        bytes.fromhex("0d3a6ddc2d21c698857215587b7bb59a91f2c147911a4144665e1fa1d40bae38"),
    ),
]
SM4_DRAFT_CTR: list[tuple[bytes, bytes, bytes, bytes]] = [
    (
        SM4_KEY,
        _IV,
        _PT_CTR,
        bytes.fromhex(
            "ac3236cb970cc20791364c395a1342d1a3cbc1878c6f30cd074cce385cdd70c7"
            "f234bc0e24c11980fd1286310ce37b926e02fcd0faa0baf38b2933851d824514"
        ),
    ),
    (
        bytes.fromhex("fedcba98765432100123456789abcdef"),
        _IV,
        _PT_CTR,
        bytes.fromhex(
            "5dcccd25b95ab07417a08512ee160e2f8f661521cbbab44cc87138445bc29e5c"
            "0ae0297205d62704173b21239b887f6c8cb5b800917a2488284bde9e16ea2906"
        ),
    ),
]

# --- SM4-GCM, RFC 8998 Appendix A.1 -------------------------------------------------------
GCM_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
GCM_IV = bytes.fromhex("00001234567800000000ABCD")
GCM_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
GCM_PLAINTEXT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
GCM_CIPHERTEXT = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
GCM_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")

# --- SM2 on the recommended curve sm2p256v1 -----------------------------------------------
# GB/T 32918.5-2017 (= GM/T 0003.5-2012) Annex A (signature) and Annex C (encryption), the
# examples OpenSSL's test/sm2_internal_test.c also uses.
SM2_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
SM2_PUBLIC = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_ID = b"1234567812345678"
SM2_SIGN_MESSAGE = b"message digest"
SM2_Z = bytes.fromhex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
SM2_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
SM2_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
SM2_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
SM2_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA

SM2_ENC_MESSAGE = b"encryption standard"
SM2_ENC_C1 = bytes.fromhex(  # x1 ‖ y1 of C1 = [k]G (x1 happens to begin with 04)
    "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
)
SM2_ENC_C3 = bytes.fromhex("59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766")
SM2_ENC_C2 = bytes.fromhex("21886CA989CA9C7D58087307CA93092D651EFA")

# --- GB/T 32918.4 KDF ---------------------------------------------------------------------
# The older GB/T 32918.4-2016 / GM/T 0003.4-2012 encryption example runs on the *test* curve
# (p = 8542D69E…), which gmssl-pyx cannot use; but its KDF step is curve-independent bytes in,
# bytes out: t = KDF(x2 ‖ y2, 152 bits).
KDF_X2 = bytes.fromhex("64D20D27D0632957F8028C1E024F6B02EDF23102A566C932AE8BD613A8E865FE")
KDF_Y2 = bytes.fromhex("58D225ECA784AE300A81A2D48281A828E1CEDF11C4219099840265375077BF78")
KDF_T = bytes.fromhex("006E30DAE231B071DFAD8AA379E90264491603")

# The same ciphertext as GM/T 0009 DER, SEQUENCE { INTEGER x1, INTEGER y1, OCTET STRING C3,
# OCTET STRING C2 }, exactly as OpenSSL's SM2 test suite (sm2_internal_test.c) lists it.
SM2_ENC_DER = bytes.fromhex(
    "307C022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "041321886CA989CA9C7D58087307CA93092D651EFA"
)
