"""``tf.train.Example`` / ``SequenceExample`` without TensorFlow: the schema (tensorflow/core/example/
{feature,example}.proto) built as descriptors in a private pool, parsed with ``protobuf``.

``features_of(record)`` turns one record into ``{key: [values]}``: an Example's features as they are,
a SequenceExample's context plus its feature lists with each step's values concatenated in order.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_LABEL_OPTIONAL, _LABEL_REPEATED = 1, 3
_TYPES = {"float": 2, "int64": 3, "string": 9, "bytes": 12, "message": 11}


@lru_cache(maxsize=1)
def message_classes() -> dict[str, Any]:
    """Message classes by name: BytesList, FloatList, Int64List, Feature, Features, FeatureList,
    FeatureLists, Example, SequenceExample."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="benchgen_tf_example.proto", package="tensorflow", syntax="proto3")

    def _add_fields(m, fields) -> None:
        for number, (fname, label, ftype, type_name) in enumerate(fields, 1):
            field = m.field.add(name=fname, number=number, label=label, type=_TYPES[ftype])
            if type_name:
                field.type_name = type_name
            if label == _LABEL_REPEATED and ftype in ("float", "int64"):
                field.options.packed = True

    def message(name: str, *fields: tuple, nested: tuple = ()) -> None:
        m = f.message_type.add(name=name)
        _add_fields(m, fields)
        for n in nested:
            m.nested_type.add().CopyFrom(n)

    def map_entry(name: str, value_type: str) -> descriptor_pb2.DescriptorProto:
        entry = descriptor_pb2.DescriptorProto(name=name)
        _add_fields(entry, [("key", _LABEL_OPTIONAL, "string", None), ("value", _LABEL_OPTIONAL, "message", value_type)])
        entry.options.map_entry = True
        return entry

    message("BytesList", ("value", _LABEL_REPEATED, "bytes", None))
    message("FloatList", ("value", _LABEL_REPEATED, "float", None))
    message("Int64List", ("value", _LABEL_REPEATED, "int64", None))
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    _add_fields(feature, [("bytes_list", _LABEL_OPTIONAL, "message", ".tensorflow.BytesList"),
                          ("float_list", _LABEL_OPTIONAL, "message", ".tensorflow.FloatList"),
                          ("int64_list", _LABEL_OPTIONAL, "message", ".tensorflow.Int64List")])
    for fd in feature.field:
        fd.oneof_index = 0
    message("Features", ("feature", _LABEL_REPEATED, "message", ".tensorflow.Features.FeatureEntry"),
            nested=(map_entry("FeatureEntry", ".tensorflow.Feature"),))
    message("FeatureList", ("feature", _LABEL_REPEATED, "message", ".tensorflow.Feature"))
    message("FeatureLists", ("feature_list", _LABEL_REPEATED, "message", ".tensorflow.FeatureLists.FeatureListEntry"),
            nested=(map_entry("FeatureListEntry", ".tensorflow.FeatureList"),))
    message("Example", ("features", _LABEL_OPTIONAL, "message", ".tensorflow.Features"))
    message("SequenceExample", ("context", _LABEL_OPTIONAL, "message", ".tensorflow.Features"),
            ("feature_lists", _LABEL_OPTIONAL, "message", ".tensorflow.FeatureLists"))

    pool = descriptor_pool.DescriptorPool()  # private: never clashes with a real TensorFlow in the process
    pool.Add(f)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{m.name}"))
            for m in f.message_type}


def _values(feature) -> list:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def features_of(record: bytes) -> dict[str, list]:
    """The record's features as ``{key: values}``; raises ``google.protobuf.message.DecodeError`` on bad bytes.

    An RLDS Example and a SequenceExample share field 1 (features / context), so the record is parsed
    as a SequenceExample: field 2 (feature lists) is present only in the sequence form."""
    seq = message_classes()["SequenceExample"].FromString(record)
    out = {key: _values(feature) for key, feature in seq.context.feature.items()}
    for key, feature_list in seq.feature_lists.feature_list.items():
        out[key] = [v for step in feature_list.feature for v in _values(step)]
    return out
