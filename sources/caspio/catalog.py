"""The account's tables and views, listed at most once per source instance (2 calls).

Listing is only needed to expand globs, to take "all objects", or to tell a table from a view
the first time an explicitly named object is read (afterwards its kind is kept in resource
state). So an incremental run over named tables lists nothing.
"""

import threading

from .client import CaspioClient
from .errors import unknown_objects_error
from .settings import TABLES, VIEWS, ObjectKind


class Catalog:
    def __init__(self, client: CaspioClient, include_views: bool = True) -> None:
        self.client = client
        self.include_views = include_views
        self._lock = threading.Lock()
        self._objects: list[tuple[str, ObjectKind]] | None = None

    def objects(self) -> list[tuple[str, ObjectKind]]:
        """``(name, "tables" | "views")`` for every readable object."""
        with self._lock:
            if self._objects is None:
                objs = [(t, TABLES) for t in self.client.list_tables()]
                if self.include_views:
                    objs += [(v, VIEWS) for v in self.client.list_views()]
                self._objects = objs
            return self._objects

    def kind_of(self, name: str) -> ObjectKind:
        objs = self.objects()
        for obj, kind in objs:
            if obj == name:
                return kind
        for obj, kind in objs:
            if obj.lower() == name.lower():
                return kind
        raise unknown_objects_error([name], [o for o, _ in objs])

    def names(self) -> list[str]:
        return [o for o, _ in self.objects()]
