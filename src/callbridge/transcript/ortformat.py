"""An ONNX Runtime format (``.ort``) model read back as an ONNX model, in memory.

Why: Moonshine's decoder ships as an ``.ort`` file whose weights are 8-bit
integers, turned back into floats by Cast, Mul and Add nodes in the graph.
ONNX Runtime runs an ``.ort`` model as it was saved, so those nodes run on
every decoding step: 41 M weights cast, scaled and shifted for each token,
about nine tenths of the transcript's CPU time. Loaded as ONNX instead, ONNX
Runtime's constant folding does that once, when the session is made.

Call ``ort_to_onnx(path)`` for the model's serialized ONNX bytes and hand them
to ``onnxruntime.InferenceSession``. Needs the ``onnx`` package (its protobuf
classes) and ONNX Runtime's own reader of the ``.ort`` flatbuffers; raises
``OrtFormatError`` for anything in the file it does not know how to carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1 << 30  # Moonshine base's decoder is 43 MB


class OrtFormatError(ValueError):
    """The file is not an ``.ort`` model this reader can carry over (the message says why)."""


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def _tensor(fbs: Any, tensor: Any, buffer: bytes) -> Any:
    from onnx import TensorProto

    proto = TensorProto()
    proto.name = _text(tensor.Name())
    proto.dims.extend(tensor.Dims(j) for j in range(tensor.DimsLength()))
    proto.data_type = tensor.DataType()
    if tensor.StringDataLength():
        proto.string_data.extend(tensor.StringData(j) for j in range(tensor.StringDataLength()))
    elif tensor.RawDataLength():
        proto.raw_data = tensor.RawDataAsNumpy().tobytes()
    elif tensor.ExternalDataOffset() > 0:
        raise OrtFormatError(f"initializer {proto.name} keeps its data outside the model")
    return proto


def _value_info(fbs: Any, node_arg: Any) -> Any:
    from onnx import ValueInfoProto

    info = ValueInfoProto()
    info.name = _text(node_arg.Name())
    kind = node_arg.Type()
    if kind is None:
        return info
    if kind.ValueType() != fbs.TypeInfoValue.TypeInfoValue.tensor_type:
        raise OrtFormatError(f"{info.name}: only tensor values are carried over")
    table = fbs.TensorTypeAndShape.TensorTypeAndShape()
    value = kind.Value()
    table.Init(value.Bytes, value.Pos)
    tensor_type = info.type.tensor_type
    tensor_type.elem_type = table.ElemType()
    shape = table.Shape()
    if shape is not None:
        tensor_type.shape.SetInParent()
        for j in range(shape.DimLength()):
            dim = tensor_type.shape.dim.add()
            found = shape.Dim(j).Value()
            if found is None:
                continue
            if found.DimType() == fbs.DimensionValueType.DimensionValueType.VALUE:
                dim.dim_value = found.DimValue()
            elif found.DimType() == fbs.DimensionValueType.DimensionValueType.PARAM:
                dim.dim_param = _text(found.DimParam())
    return info


def _attribute(fbs: Any, attribute: Any, buffer: bytes) -> Any:
    from onnx import AttributeProto

    kinds = fbs.AttributeType.AttributeType
    proto = AttributeProto()
    proto.name = _text(attribute.Name())
    kind = attribute.Type()
    proto.type = kind
    if kind == kinds.FLOAT:
        proto.f = attribute.F()
    elif kind == kinds.INT:
        proto.i = attribute.I()
    elif kind == kinds.STRING:
        proto.s = attribute.S() or b""
    elif kind == kinds.TENSOR:
        proto.t.CopyFrom(_tensor(fbs, attribute.T(), buffer))
    elif kind == kinds.GRAPH:
        proto.g.CopyFrom(_graph(fbs, attribute.G(), buffer))
    elif kind == kinds.FLOATS:
        proto.floats.extend(attribute.Floats(j) for j in range(attribute.FloatsLength()))
    elif kind == kinds.INTS:
        proto.ints.extend(attribute.Ints(j) for j in range(attribute.IntsLength()))
    elif kind == kinds.STRINGS:
        proto.strings.extend(attribute.Strings(j) for j in range(attribute.StringsLength()))
    elif kind == kinds.TENSORS:
        proto.tensors.extend(
            _tensor(fbs, attribute.Tensors(j), buffer) for j in range(attribute.TensorsLength())
        )
    elif kind == kinds.GRAPHS:
        proto.graphs.extend(
            _graph(fbs, attribute.Graphs(j), buffer) for j in range(attribute.GraphsLength())
        )
    else:
        raise OrtFormatError(f"attribute {proto.name}: type {kind} is not carried over")
    return proto


def _graph(fbs: Any, graph: Any, buffer: bytes) -> Any:
    from onnx import GraphProto, NodeProto

    proto = GraphProto()
    proto.name = "graph"
    if graph.SparseInitializersLength():
        raise OrtFormatError("sparse initializers are not carried over")
    args = {}
    for j in range(graph.NodeArgsLength()):
        arg = graph.NodeArgs(j)
        args[_text(arg.Name())] = arg
    initializers = set()
    for j in range(graph.InitializersLength()):
        tensor = _tensor(fbs, graph.Initializers(j), buffer)
        initializers.add(tensor.name)
        proto.initializer.append(tensor)
    nodes = sorted(
        (graph.Nodes(j) for j in range(graph.NodesLength())), key=lambda node: node.Index()
    )
    for node in nodes:
        if node.Type() != fbs.NodeType.NodeType.Primitive:
            raise OrtFormatError(f"node {_text(node.Name())}: fused nodes are not carried over")
        made = NodeProto()
        made.name = _text(node.Name())
        made.op_type = _text(node.OpType())
        made.domain = _text(node.Domain())
        made.input.extend(_text(node.Inputs(j)) for j in range(node.InputsLength()))
        made.output.extend(_text(node.Outputs(j)) for j in range(node.OutputsLength()))
        made.attribute.extend(
            _attribute(fbs, node.Attributes(j), buffer) for j in range(node.AttributesLength())
        )
        proto.node.append(made)
    for j in range(graph.InputsLength()):
        name = _text(graph.Inputs(j))
        if name not in initializers:
            proto.input.append(_value_info(fbs, args[name]))
    for j in range(graph.OutputsLength()):
        proto.output.append(_value_info(fbs, args[_text(graph.Outputs(j))]))
    return proto


def ort_to_onnx(path: Path) -> bytes:
    """The ``.ort`` model at ``path`` as a serialized ONNX model (same graph, same weights)."""
    from onnx import ModelProto, OperatorSetIdProto
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py import fbs

    buffer = Path(path).read_bytes()[: MAX_FILE_BYTES + 1]
    if len(buffer) > MAX_FILE_BYTES:
        raise OrtFormatError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    if not fbs.InferenceSession.InferenceSession.InferenceSessionBufferHasIdentifier(buffer, 0):
        raise OrtFormatError(f"{path}: not an ONNX Runtime format model")
    model = fbs.InferenceSession.InferenceSession.GetRootAs(buffer, 0).Model()
    if model is None or model.Graph() is None:
        raise OrtFormatError(f"{path}: no model in the file")
    proto = ModelProto()
    proto.ir_version = model.IrVersion()
    proto.producer_name = _text(model.ProducerName())
    for j in range(model.OpsetImportLength()):
        found = model.OpsetImport(j)
        opset = OperatorSetIdProto()
        opset.domain = _text(found.Domain())
        opset.version = found.Version()
        proto.opset_import.append(opset)
    proto.graph.CopyFrom(_graph(fbs, model.Graph(), buffer))
    return bytes(proto.SerializeToString())
