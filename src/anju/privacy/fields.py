"""THE declaration of every PI field anju stores (the one place; docs/privacy.md is made from it).

Tables named here may arrive in later migrations (people, biometrics, CTID); each entry says
where its column will live so the vault binds ciphertexts to that place from day one.
"""

from __future__ import annotations

from anju.privacy.inventory import (
    Category,
    Inventory,
    PIField,
    Purpose,
    Retention,
    RetentionAnchor,
    Sensitivity,
)

_AFTER_CHECK_OUT_30 = Retention(
    RetentionAnchor.CHECK_OUT, 30, "退房后 30 天", "until check-out + 30 days"
)
_AT_CHECK_OUT = Retention(RetentionAnchor.CHECK_OUT, 0, "退房时删除", "deleted at check-out")
_AFTER_VERIFICATION = Retention(
    RetentionAnchor.VERIFICATION_DONE, 0, "核验完成即删除", "deleted once verification is done"
)
_AFTER_ACCOUNT_CLOSED_30 = Retention(
    RetentionAnchor.ACCOUNT_CLOSED, 30, "注销账户后 30 天", "until account closure + 30 days"
)

P = Purpose

INVENTORY = Inventory(
    [
        PIField(
            name="person.name",
            table="people",
            column="name",
            category=Category.NAME,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset(
                {
                    P.IDENTITY_VERIFICATION,
                    P.REGULATOR_REPORT,
                    P.GUEST_CONTACT,
                    P.LAWFUL_REQUEST,
                    P.SUBJECT_ACCESS,
                }
            ),
            retention=_AFTER_CHECK_OUT_30,
            masking="name",
            blind_index="text",
            description_zh="住客或租户的姓名（实名登记）。",
            description_en="Guest or tenant name (real-name registration).",
        ),
        PIField(
            name="person.document_number",
            table="people",
            column="document_number",
            category=Category.IDENTITY_NUMBER,
            sensitivity=Sensitivity.SENSITIVE,
            purposes=frozenset(
                {P.IDENTITY_VERIFICATION, P.REGULATOR_REPORT, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}
            ),
            retention=_AFTER_CHECK_OUT_30,
            masking="id_number",
            blind_index="id_number",
            description_zh="身份证件号码（居民身份证、护照等）。",
            description_en="Identity document number (resident ID card, passport, ...).",
        ),
        PIField(
            name="person.phone",
            table="people",
            column="phone",
            category=Category.PHONE,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset(
                {P.GUEST_CONTACT, P.LOCK_CREDENTIAL_ISSUE, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}
            ),
            retention=_AFTER_CHECK_OUT_30,
            masking="phone",
            blind_index="phone",
            description_zh="联系电话，用于通知和发送开锁凭证。",
            description_en="Contact phone, for notices and sending lock credentials.",
        ),
        PIField(
            name="person.email",
            table="people",
            column="email",
            category=Category.EMAIL,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset({P.GUEST_CONTACT, P.SUBJECT_ACCESS}),
            retention=_AFTER_ACCOUNT_CLOSED_30,
            masking="email",
            blind_index="email",
            description_zh="电子邮箱（可选）。",
            description_en="Email address (optional).",
        ),
        PIField(
            name="person.address",
            table="people",
            column="address",
            category=Category.ADDRESS,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset({P.REGULATOR_REPORT, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}),
            retention=_AFTER_CHECK_OUT_30,
            masking="address",
            blind_index=None,
            description_zh="证件住址或常住地址。",
            description_en="Address on the identity document or of residence.",
        ),
        PIField(
            name="organisation.legal_representative",
            table="people",
            column="legal_representative",
            category=Category.NAME,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset(
                {P.IDENTITY_VERIFICATION, P.REGULATOR_REPORT, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}
            ),
            retention=_AFTER_ACCOUNT_CLOSED_30,
            masking="name",
            blind_index=None,
            description_zh="机构（出租方、承租单位）的法定代表人姓名。",
            description_en="Legal representative of an organisation (landlord or tenant company).",
        ),
        PIField(
            name="biometric.face_template",
            table="biometric_templates",
            column="template",
            category=Category.BIOMETRIC_TEMPLATE,
            sensitivity=Sensitivity.SENSITIVE,
            purposes=frozenset({P.IDENTITY_VERIFICATION, P.LOCK_CREDENTIAL_ISSUE}),
            retention=_AT_CHECK_OUT,
            masking="hidden",
            blind_index=None,
            description_zh="人脸特征模板（不可逆、可撤销；原始图像从不保存）。",
            description_en="Face feature template (irreversible, revocable; raw images are "
            "never stored).",
        ),
        PIField(
            name="booking.contact_name",
            table="stays_bookings",
            column="contact_name",
            category=Category.NAME,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset({P.GUEST_CONTACT, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}),
            retention=_AFTER_CHECK_OUT_30,
            masking="name",
            blind_index=None,
            description_zh="预订联系人姓名（来自预订渠道，未经实名核验）。",
            description_en="Booking contact name (from the booking channel, not verified).",
        ),
        PIField(
            name="booking.contact_phone",
            table="stays_bookings",
            column="contact_phone",
            category=Category.PHONE,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset({P.GUEST_CONTACT, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}),
            retention=_AFTER_CHECK_OUT_30,
            masking="phone",
            blind_index=None,
            description_zh="预订联系人电话，用于入住前联系。",
            description_en="Booking contact phone, to reach the guest before arrival.",
        ),
        PIField(
            name="ctid.network_identifier",
            table="ctid_credentials",
            column="network_identifier",
            category=Category.NETWORK_IDENTIFIER,
            sensitivity=Sensitivity.SENSITIVE,
            purposes=frozenset({P.IDENTITY_VERIFICATION, P.REGULATOR_REPORT, P.LAWFUL_REQUEST}),
            retention=_AFTER_CHECK_OUT_30,
            masking="generic",
            blind_index="text",
            description_zh="居民身份网络认证（CTID）返回的网络身份标识。",
            description_en="Network identifier returned by the CTID network identity service.",
        ),
        PIField(
            name="ctid.credential",
            table="ctid_credentials",
            column="credential",
            category=Category.CTID_CREDENTIAL,
            sensitivity=Sensitivity.SENSITIVE,
            purposes=frozenset({P.IDENTITY_VERIFICATION}),
            retention=_AFTER_VERIFICATION,
            masking="hidden",
            blind_index=None,
            description_zh="网证凭据（CTID 认证凭据），仅用于实名核验。",
            description_en="CTID credential, used only for identity verification.",
        ),
        PIField(
            name="tenant_request.body",
            table="tenant_requests",
            column="body",
            category=Category.FREE_TEXT,
            sensitivity=Sensitivity.GENERAL,
            purposes=frozenset({P.SERVICE_REQUEST, P.LAWFUL_REQUEST, P.SUBJECT_ACCESS}),
            retention=_AFTER_ACCOUNT_CLOSED_30,
            masking="hidden",
            blind_index=None,
            description_zh="住户报修或反馈的文字（可能含个人信息，按该住户的密钥加密）。",
            description_en="Text of a tenant's repair request or feedback (may hold personal "
            "information; sealed under that person's key).",
        ),
    ]
)
