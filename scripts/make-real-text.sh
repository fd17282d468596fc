#!/usr/bin/env bash
# Builds a real-text corpus with long documents for the quality replicas (docs/quality.md):
# the reStructuredText of Debian's linux-doc package (the Linux kernel's documentation, GPL-2.0),
# one document per directory two levels below Documentation/ (its .rst files concatenated in
# sorted path order), written as gzip-compressed JSON Lines with a "text" field.
#
# usage: scripts/make-real-text.sh [OUT]     (default data/linux-doc.jsonl.gz; ~6 MB, 24 MB of text)
# Train on it with --set data.source=OUT. Needs apt-get (downloads one .deb, installs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/linux-doc.jsonl.gz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q linux-doc-6.1 >/dev/null 2>&1) ||
  { echo "make-real-text: apt-get download linux-doc-6.1 failed" >&2; exit 1; }
dpkg -x "$work"/linux-doc-6.1_*.deb "$work/x"
mkdir -p "$(dirname "$out")"
python3 - "$work/x/usr/share/doc/linux-doc-6.1/Documentation" "$out" <<'PY'
import collections, gzip, json, pathlib, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
docs = collections.defaultdict(list)
for path in sorted(root.rglob("*.rst.gz")):
    parts = path.relative_to(root).parts
    docs["/".join(parts[:2]) if len(parts) > 2 else parts[0]].append(path)
n_bytes = 0
tmp = out.with_name(out.name + ".tmp")
with gzip.open(tmp, "wt", encoding="utf-8") as f:
    for key in sorted(docs):
        text = "\n\n".join(gzip.open(p).read().decode("utf-8", "replace") for p in docs[key])
        n_bytes += len(text.encode())
        f.write(json.dumps({"source": key, "text": text}) + "\n")
tmp.replace(out)
print(f"make-real-text: {len(docs)} documents, {n_bytes / 1e6:.1f} MB of text -> {out}")
PY
