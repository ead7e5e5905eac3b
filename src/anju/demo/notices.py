"""The notices the demo hotel publishes (zh-CN first, English alongside)."""

from __future__ import annotations

from anju.consent.notices import NoticeContent, build_content

PRIVACY_POLICY = build_content(
    "privacy_policy",
    title_zh="隐私政策",
    title_en="Privacy policy",
    text_zh=(
        "依据《旅馆业治安管理办法》，入住须实名登记。我们处理您的姓名、证件号码和手机号码，"
        "仅用于实名核验与联系您；数据加密保存，退房后按保存策略删除。"
    ),
    text_en=(
        "Hotels must register guests under their real names. We process your name, ID number "
        "and phone only to verify your identity and contact you; the data is kept encrypted and "
        "deleted after check-out as the retention policy says."
    ),
    items=[
        ("identity_verification", ["name", "identity_number"], True),
        ("guest_contact", ["phone"], False),
    ],
)

FACE_RECOGNITION = build_content(
    "face_recognition",
    title_zh="人脸识别单独同意",
    title_en="Face recognition (separate consent)",
    text_zh="人脸特征模板仅用于门锁本地开锁，不保存人像，退房即从门锁删除。拒绝不影响入住。",
    text_en=(
        "A face template is used only by the lock to open it; no portrait is kept; it is "
        "wiped from the lock at check-out. Refusing does not stop you checking in."
    ),
    items=[("lock_credential_issue", ["biometric_template"], False)],
)

REGULATOR_REPORTING = build_content(
    "regulator_reporting",
    title_zh="治安管理信息上报告知",
    title_en="Reporting to the public-security regulator",
    text_zh="依法向公安机关报送您的入住身份信息和开锁记录，报文签名后加密传输。",
    text_en=(
        "By law we report your check-in identity and unlock records to the public-security "
        "regulator, signed and then encrypted."
    ),
    items=[("regulator_report", ["name", "identity_number"], True)],
)

DEMO_NOTICES: tuple[NoticeContent, ...] = (PRIVACY_POLICY, FACE_RECOGNITION, REGULATOR_REPORTING)
