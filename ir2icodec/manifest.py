"""The model bundle manifest (``model.json``): shared by the exporter and the runtime."""

from __future__ import annotations

import hashlib

MANIFEST_NAME = "model.json"
DIGEST_BYTES = 16


def bundle_digest(name: str, files: dict[str, str]) -> str:
    """Identity of a bundle: its name and the SHA-256 of each graph, hashed together.

    Stored in every .ir2i file so a decoder refuses codes made by any other weights.
    """
    h = hashlib.sha256(name.encode())
    for fname in sorted(files):
        h.update(f"\0{fname}\0{files[fname]}".encode())
    return h.hexdigest()[: 2 * DIGEST_BYTES]
