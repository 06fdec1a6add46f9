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


def tables_digest(bundle: str, tables_sha256: str) -> str:
    """Identity of a bundle's weights together with its bit tables: what a format-version-3
    file stores as its model digest, since its codes decode only with those very tables (the
    tables are outside ``bundle_digest``, so that adding them to a shipped model leaves its
    earlier files valid)."""
    h = hashlib.sha256(f"ir2i-bit-tables\0{bundle}\0{tables_sha256}".encode())
    return h.hexdigest()[: 2 * DIGEST_BYTES]
