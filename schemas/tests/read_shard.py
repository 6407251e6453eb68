"""Reads a shard with pyarrow and prints what a Python user sees, as JSON.

Used by pyarrow_reads_shard.rs: `python read_shard.py SHARD`.
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq

table = pq.read_table(sys.argv[1])
schema = table.schema
lm = schema.field("landmarks").type
occ = schema.field("au_occurrence").type
print(json.dumps({
    "columns": schema.names,
    "rows": table.num_rows,
    "landmarks_is_fixed_size_list": pa.types.is_fixed_size_list(lm),
    "landmarks_list_size": lm.list_size,
    "landmarks_value_type": str(lm.value_type),
    "occurrence_value_type": str(occ.value_type),
    "image_type": str(schema.field("image").type),
    "image_hex": [b.hex() for b in table.column("image").to_pylist()],
    "landmarks_row1": table.column("landmarks")[1].as_py(),
    "occurrence_row1": table.column("au_occurrence")[1].as_py(),
    "sample_ids": table.column("sample_id").to_pylist(),
    "metadata": {k.decode(): v.decode() for k, v in schema.metadata.items()},
}))
