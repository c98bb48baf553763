#!/usr/bin/env python3
"""Regenerates the Kubernetes schemas embedded in tally (validator/schemas/v1.XX.json.gz).

Source: the PyPI package kubernetes-validate (Apache-2.0), which ships the Kubernetes OpenAPI
definitions (Apache-2.0, The Kubernetes Authors) already converted to JSON Schema draft 2020-12,
one strict `_definitions.json` per Kubernetes minor version. See the NOTICE file at the root.

Reproduce:

    pip download --no-deps -d /tmp/kv kubernetes-validate==1.37.0
    python3 validator/schemas/generate.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl

The argument may also be the unpacked `kubernetes_validate/kubernetes-json-schema` directory. The
output is byte-for-byte reproducible: keys keep the source's order, and the gzip headers carry no
file name and no time.

What the conversion keeps: only what validation needs.

- Dropped: `description`, every `x-kubernetes-*` extension except `x-kubernetes-group-version-kind`
  (tally indexes kinds by it), and `format`s that tally does not check.
- `format: int32` becomes `minimum`/`maximum` (the API server rejects values outside int32).
- `format: byte` (base64 data, e.g. Secret `data`) and `format: date-time` stay; tally checks them.
- IntOrString becomes `type: [integer, string, null]` and Quantity `type: [string, number, null]`
  with the quantity grammar as a `pattern`: the same values as the source's `oneOf`, but errors
  that say "expected an integer or a string" rather than listing each failed alternative, and
  quantity strings such as `1gb` rejected as the API server rejects them.
"""

import gzip
import io
import json
import os
import sys
import zipfile

FIRST_MINOR = 25
LAST_MINOR = 37
PREFIX = "kubernetes_validate/kubernetes-json-schema/"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Kubernetes' quantity grammar (apimachinery resource.ParseQuantity): a signed decimal number with
# an optional binary-SI, decimal-SI or exponent suffix. Keep in sync with QUANTITY_PATTERN in
# validator/src/schema/messages.rs, which recognises it to word the error.
QUANTITY_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"

KEPT_FORMATS = {"byte", "date-time"}
KEPT_EXTENSIONS = {"x-kubernetes-group-version-kind"}
# Keywords whose value is a map of name -> schema (the names are data, not keywords).
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions"}
# Keywords whose value is a schema or a list of schemas.
SCHEMA_VALUES = {"items", "additionalProperties", "not", "oneOf", "anyOf", "allOf"}
# Keywords kept as they are (data).
DATA_KEYWORDS = {"type", "enum", "required", "$ref", "const", "minimum", "maximum", "pattern",
                 "minItems", "maxItems", "minLength", "maxLength", "$schema", "$id"}


def convert(schema):
    """Returns the validating part of one schema node."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in SCHEMA_MAPS:
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in SCHEMA_VALUES:
            out[key] = [convert(s) for s in value] if isinstance(value, list) else convert(value)
        elif key == "format":
            if value == "int32":
                out["minimum"] = -(2**31)
                out["maximum"] = 2**31 - 1
            elif value in KEPT_FORMATS:
                out["format"] = value
        elif key in KEPT_EXTENSIONS:
            out[key] = [{"group": g["group"], "version": g["version"], "kind": g["kind"]}
                        for g in value]
        elif key in DATA_KEYWORDS:
            out[key] = value
        elif key == "description" or key.startswith("x-kubernetes-"):
            continue
        else:
            raise SystemExit(f"unexpected keyword {key!r}: extend generate.py deliberately")
    return out


def convert_document(doc):
    defs = {name: convert(schema) for name, schema in doc["$defs"].items()}
    if INT_OR_STRING in defs:
        defs[INT_OR_STRING] = {"type": ["integer", "string", "null"]}
    if QUANTITY in defs:
        defs[QUANTITY] = {"type": ["string", "number", "null"], "pattern": QUANTITY_PATTERN}
    return {"$schema": doc["$schema"], "$id": doc["$id"], "$defs": defs}


def read_source(source, minor):
    name = f"v1.{minor}.0-local-strict/_definitions.json"
    if os.path.isdir(source):
        with open(os.path.join(source, name), "rb") as f:
            return json.load(f)
    with zipfile.ZipFile(source) as wheel:
        return json.loads(wheel.read(PREFIX + name))


def write_gzip(path, data):
    buf = io.BytesIO()
    # mtime=0 and no file name: the same input gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    source = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    for minor in range(FIRST_MINOR, LAST_MINOR + 1):
        doc = convert_document(read_source(source, minor))
        data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        out = os.path.join(here, f"v1.{minor}.json.gz")
        write_gzip(out, data)
        kinds = sum(1 for s in doc["$defs"].values() if "x-kubernetes-group-version-kind" in s)
        print(f"{out}: {len(data)} bytes of JSON, {os.path.getsize(out)} gzipped, {kinds} kinds")


if __name__ == "__main__":
    main()
