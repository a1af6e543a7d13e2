"""The pandas script of `pandas_script`, paging by key as the connector does.

It asks for `q.where=PK_ID > <last PK_ID read>`, `q.orderBy=PK_ID`, `q.pageSize=1000` until a
short page, so every page costs the server one index seek instead of a sort and skip that grows
with the page number. Everything else (DataFrame, JSON text for list fields, one
`CREATE TABLE ... AS SELECT`) is the same script.
"""

from __future__ import annotations

from collections.abc import Sequence

from .pandas_script import run


def main(argv: Sequence[str] | None = None) -> None:
    run(argv, "pandas_keyset", by_key=True)


if __name__ == "__main__":
    main()
