"""Data tools: token shards (docs/data.md).

- `lighthouse.data.shards`: the on-disk format, `ShardWriter` and `read_tokens`.
- `python -m lighthouse.data.tokenize`: text, directories and JSON Lines (.gz) through any
  Hugging Face fast tokenizer into shards that `lighthouse train --set data.source=DIR` reads.
"""
