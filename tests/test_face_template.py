"""Revocable face templates (F3): protected-domain decisions, renewal, unlinkability, format."""

from __future__ import annotations

import itertools

import pytest

from anju.face.engine import FaceEngine
from anju.face.template import (
    BITS,
    HAMMING_THRESHOLD,
    ProtectedTemplate,
    derive_template_key,
    hamming_fraction,
    protect,
    templates_match,
)
from tests.support import face_derive as derive
from tests.support.face_images import IDENTITY, INDEPENDENT, FacePhotos

pytestmark = pytest.mark.req("F3", "L10")

SECRET_A = bytes(range(32))
SECRET_B = bytes(range(1, 33))


@pytest.fixture(scope="module")
def embeddings(face_engine: FaceEngine, face_photos: FacePhotos) -> dict[str, object]:
    return {name: face_engine.sample(face_photos[name]).embedding for name in INDEPENDENT}


def test_decisions_in_the_protected_domain_agree_with_the_raw_domain(embeddings) -> None:
    for a, b in itertools.combinations(INDEPENDENT, 2):
        key = derive_template_key(SECRET_A, f"subject-{a}", 1)
        same_person = IDENTITY[a] == IDENTITY[b]
        assert templates_match(protect(embeddings[a], key), protect(embeddings[b], key)) == (
            same_person
        ), (a, b)


def test_a_template_is_deterministic_and_bound_to_its_key(embeddings) -> None:
    e = embeddings["obama.jpg"]
    key = derive_template_key(SECRET_A, "subject-1", 1)
    assert protect(e, key) == protect(e, key)
    assert len(protect(e, key).bits) == BITS // 8
    keys = {
        derive_template_key(SECRET_A, "subject-1", 1),
        derive_template_key(SECRET_A, "subject-1", 2),  # renewed
        derive_template_key(SECRET_A, "subject-2", 1),  # another person
        derive_template_key(SECRET_B, "subject-1", 1),  # another deployment
    }
    assert len(keys) == 4


@pytest.mark.parametrize(
    "other_key",
    [
        derive_template_key(SECRET_A, "subject-1", 2),
        derive_template_key(SECRET_B, "subject-1", 1),
    ],
    ids=["renewed-version", "other-deployment"],
)
def test_one_face_under_two_keys_looks_like_two_strangers(embeddings, other_key: bytes) -> None:
    """Renewal revokes: the old template does not match the new one; deployments do not link."""
    key = derive_template_key(SECRET_A, "subject-1", 1)
    for name in INDEPENDENT:
        distance = hamming_fraction(
            protect(embeddings[name], key), protect(embeddings[name], other_key)
        )
        assert 0.42 < distance < 0.58, name
        assert distance > HAMMING_THRESHOLD


def test_a_recompressed_capture_still_matches_its_template(
    face_engine: FaceEngine, face_photos: FacePhotos, embeddings
) -> None:
    key = derive_template_key(SECRET_A, "subject-1", 1)
    reference = protect(embeddings["obama.jpg"], key)
    degraded = derive.jpeg(derive.scaled(face_photos["obama.jpg"], 0.5), quality=40)
    assert templates_match(reference, protect(face_engine.sample(degraded).embedding, key))


def test_the_storage_form_round_trips_and_refuses_garbage(embeddings) -> None:
    template = protect(embeddings["biden.jpg"], derive_template_key(SECRET_A, "s", 1))
    assert ProtectedTemplate.from_bytes(bytes(template)) == template
    assert template.bits.hex() not in repr(template)
    for bad in (b"", bytes(template)[:-1], b"\x02" + bytes(template)[1:]):
        with pytest.raises(ValueError, match="not an anju face template"):
            ProtectedTemplate.from_bytes(bad)
    with pytest.raises(ValueError, match="positive 32-bit"):
        derive_template_key(SECRET_A, "s", 0)
    with pytest.raises(ValueError, match="128 values"):
        protect(embeddings["biden.jpg"][:64], derive_template_key(SECRET_A, "s", 1))


@pytest.mark.req("L14")
def test_an_older_keyring_gets_the_template_secret_on_upgrade(tmp_path) -> None:
    import json

    from anju.errors import KeyUnavailable
    from anju.kit.keyring import FileKeyProvider

    path = tmp_path / "keys" / "keyring.json"
    FileKeyProvider.create(path)
    data = json.loads(path.read_text())
    del data["secrets"]["biometric-template"]  # as written before biometrics existed
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    with pytest.raises(KeyUnavailable, match="anju db upgrade"):
        FileKeyProvider.load(path).secret("biometric-template")
    assert FileKeyProvider.load(path).add_missing_named_keys() == ["biometric-template"]
    secret = FileKeyProvider.load(path).secret("biometric-template")
    assert len(secret) == 32
    assert secret != FileKeyProvider.load(path).secret("blind-index")
