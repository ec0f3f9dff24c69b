"""Checks a prefetched dataset against its manifest (runctl's _runctl_manifest.json).

    python3 verify_manifest.py SOURCE DIR

SOURCE is the S3 URI the copy came from (only for the message); DIR the copy on the instance,
holding _runctl_manifest.json: {"version": 1, "files": [{"path", "size", "sha256"}]}. Every listed
file must exist in DIR with that size and sha256. Files are checked in the manifest's order and
the first that does not match is named on stderr; exit 0 when all match, 1 when one does not,
2 when the manifest itself cannot be read. Uses the standard library only (a Deep Learning AMI's
python3).
"""
import hashlib
import json
import os
import sys

MANIFEST = "_runctl_manifest.json"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(directory):
    with open(os.path.join(directory, MANIFEST)) as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict) or manifest.get("version") != 1 or not isinstance(manifest.get("files"), list):
        raise ValueError('expected {"version": 1, "files": [...]}')
    for entry in manifest["files"]:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or path.startswith("/") or any(s in ("", ".", "..") for s in path.split("/")):
            raise ValueError("a file entry has no relative path: %r" % (entry,))
        if not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise ValueError("file %s has no size or sha256" % path)
    return manifest["files"]


def first_mismatch(directory, files):
    """(path, reason) of the first file of the manifest that the copy does not match, or None."""
    for entry in files:
        path = os.path.join(directory, *entry["path"].split("/"))
        if not os.path.isfile(path):
            return entry["path"], "missing from the copy"
        size = os.path.getsize(path)
        if size != entry["size"]:
            return entry["path"], "%d bytes, the manifest says %d" % (size, entry["size"])
        digest = sha256_of(path)
        if digest != entry["sha256"]:
            return entry["path"], "sha256 %s, the manifest says %s" % (digest, entry["sha256"])
    return None


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: verify_manifest.py SOURCE DIR\n")
        return 2
    source, directory = argv[1], argv[2]
    try:
        files = load(directory)
    except (OSError, ValueError) as error:
        sys.stderr.write("runctl prefetch: the manifest of %s cannot be read: %s\n" % (source, error))
        return 2
    bad = first_mismatch(directory, files)
    if bad is not None:
        sys.stderr.write("runctl prefetch: %s does not match its manifest: %s is %s\n" % (source, bad[0], bad[1]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
