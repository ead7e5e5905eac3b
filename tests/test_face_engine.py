"""The face engine on real photos: 1:1 decisions, quality gates, bad input (R9c, R10, F2)."""

from __future__ import annotations

import pytest

from anju.face.engine import FaceEngine
from anju.face.reasons import FaceRefused, Reason, explain
from tests.support import face_derive as derive
from tests.support.face_images import FacePhotos

pytestmark = pytest.mark.req("R9", "R10", "N2")


@pytest.mark.parametrize(
    ("document", "live"),
    [("obama.jpg", "obama2.jpg"), ("obama.jpg", "obama3.jpg"), ("obama3.jpg", "obama2.jpg")],
)
def test_two_photos_of_one_person_match(
    face_engine: FaceEngine, face_photos: FacePhotos, document: str, live: str
) -> None:
    result = face_engine.verify(face_photos[document], face_photos[live])
    assert result.decision == "match"
    assert result.distance is not None
    assert result.distance < result.threshold
    assert result.as_dict()["reasons"] == {}


@pytest.mark.parametrize(
    ("document", "live"),
    [
        ("obama.jpg", "biden.jpg"),
        ("obama2.jpg", "grace_hopper.jpg"),
        ("astronaut.png", "grace_hopper.jpg"),
        ("biden.jpg", "astronaut.png"),
    ],
)
def test_photos_of_two_people_do_not_match(
    face_engine: FaceEngine, face_photos: FacePhotos, document: str, live: str
) -> None:
    result = face_engine.verify(face_photos[document], face_photos[live])
    assert result.decision == "no_match"
    assert result.distance is not None
    assert result.distance > result.threshold


def test_a_low_quality_copy_of_the_document_photo_still_matches(
    face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    # An ID card chip photo is small and heavily compressed: 102×126 pixels, JPEG.
    document = derive.jpeg(derive.scaled(face_photos["obama.jpg"], 0.35), quality=35)
    result = face_engine.verify(document, face_photos["obama3.jpg"])
    assert result.decision == "match"


def _refusal(engine: FaceEngine, data: bytes) -> list[Reason]:
    with pytest.raises(FaceRefused) as refused:
        engine.sample(data)
    assert refused.value.code == "face_refused"
    message = refused.value.message
    assert " / " in message  # zh-CN first, English alongside
    return refused.value.reasons


def test_no_face_is_refused(face_engine: FaceEngine, face_photos: FacePhotos) -> None:
    assert _refusal(face_engine, face_photos["chelsea.png"]) == [Reason.NO_FACE]
    assert _refusal(face_engine, face_photos["coffee.png"]) == [Reason.NO_FACE]


def test_two_faces_are_refused(face_engine: FaceEngine, face_photos: FacePhotos) -> None:
    both = derive.side_by_side(face_photos["obama.jpg"], face_photos["grace_hopper.jpg"])
    assert _refusal(face_engine, both) == [Reason.MULTIPLE_FACES]


def test_a_tiny_face_is_refused(face_engine: FaceEngine, face_photos: FacePhotos) -> None:
    # The astronaut's face is 88 px wide; at 40 % it is about 35 px.
    small = derive.scaled(face_photos["astronaut.png"], 0.4)
    assert Reason.FACE_TOO_SMALL in _refusal(face_engine, small)


def test_a_cut_off_face_is_refused(face_engine: FaceEngine, face_photos: FacePhotos) -> None:
    # obama.jpg's face spans x ≈ 41–66 % of the width; cut through the middle of it.
    half = derive.crop(face_photos["obama.jpg"], 0.0, 0.0, 0.55, 0.6)
    assert _refusal(face_engine, half) == [Reason.FACE_CUT_OFF]


def test_a_face_in_profile_is_refused_with_a_pose_reason(
    face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    # camera.png: a man looking into a camera, turned sideways; enlarged so size is not the issue.
    big = derive.scaled(face_photos["camera.png"], 2.5)
    assert _refusal(face_engine, big) == [Reason.POSE]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: derive.blurred(d, 0.006), Reason.BLURRY),
        (lambda d: derive.brightness(d, 0.15), Reason.TOO_DARK),
        (lambda d: derive.brightness(d, 3.0), Reason.TOO_BRIGHT),
    ],
    ids=["blurred", "dark", "over-exposed"],
)
def test_quality_gates_say_what_to_fix(
    face_engine: FaceEngine, face_photos: FacePhotos, change, reason: Reason
) -> None:
    original = face_photos["obama.jpg"]
    face_engine.sample(original)  # the original passes every gate
    assert _refusal(face_engine, change(original)) == [reason]


def test_bad_files_are_refused_never_crash(
    face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    photo = face_photos["obama.jpg"]
    assert _refusal(face_engine, b"") == [Reason.NOT_AN_IMAGE]
    assert _refusal(face_engine, b"%PDF-1.7 not a photo" * 40) == [Reason.NOT_AN_IMAGE]
    assert _refusal(face_engine, photo[: len(photo) // 2]) == [Reason.TRUNCATED_IMAGE]
    png = derive.encode(derive.load(photo), "PNG")
    assert _refusal(face_engine, png[: len(png) // 3]) == [Reason.TRUNCATED_IMAGE]
    gif = derive.encode(derive.load(photo), "GIF")
    assert _refusal(face_engine, gif) == [Reason.UNSUPPORTED_FORMAT]
    assert _refusal(face_engine, photo + bytes(11 * 1024 * 1024)) == [Reason.FILE_TOO_LARGE]
    from PIL import Image

    huge = derive.encode(Image.new("L", (8000, 6000)), "PNG")  # 48 MP in a small file
    assert len(huge) < 1024 * 1024
    assert _refusal(face_engine, huge) == [Reason.TOO_MANY_PIXELS]
    tiny = derive.encode(Image.new("RGB", (40, 30)), "PNG")
    assert _refusal(face_engine, tiny) == [Reason.IMAGE_TOO_SMALL]


def test_a_refused_input_is_named_in_the_verification(
    face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    result = face_engine.verify(face_photos["obama.jpg"], face_photos["coffee.png"])
    assert result.decision == "refused"
    assert result.distance is None
    out = result.as_dict()
    assert list(out["reasons"]) == ["live"]
    assert out["reasons"]["live"][0]["code"] == "no_face"


@pytest.mark.req("F2")
def test_every_reason_explains_itself_in_both_languages() -> None:
    for reason in Reason:
        text = explain(reason)
        assert text.zh
        assert text.en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text.zh)
        assert text.en.isascii()
