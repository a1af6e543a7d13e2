"""dlt's generic `rest_api` source as a dlt user who tunes it configures it.

The same `RESTAPIConfig` as `rest_api_generic`, plus the two settings dlt's docs point a user
with a slow load or many endpoints to: `loader_file_format="parquet"` (rows normalized into
Arrow and Parquet instead of SQL `INSERT` text) and `parallelized: True` on every resource
(the endpoints extracted together instead of one after another).
"""

from __future__ import annotations

from collections.abc import Sequence

from .rest_api_generic import run


def main(argv: Sequence[str] | None = None) -> None:
    run(argv, "rest_api_parquet", tuned=True)


if __name__ == "__main__":
    main()
