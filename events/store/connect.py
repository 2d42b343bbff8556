"""Connection parameters the ``eventsourcing`` PostgreSQL settings have no key for.

The library's datastore takes host, port, user, password and database name only. The rest
of the store's URL (``sslmode``, ``sslrootcert``, ``application_name``…) travels in the
environment as one conninfo string under ``POSTGRES_CONNECT_ARGS`` (``store_env``) and is
added here to the keyword arguments of the datastore's pool before it first connects.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.postgres import PostgresFactory
from psycopg.conninfo import conninfo_to_dict

CONNECT_ARGS = "POSTGRES_CONNECT_ARGS"
# What the library's own keys already carry.
NAMED = frozenset({"dbname", "host", "port", "user", "password"})


def connect_args(info: Mapping[str, object]) -> dict[str, str]:
    """The parameters of a parsed URL that the library's own keys do not carry."""
    return {k: str(v) for k, v in info.items() if k not in NAMED}


def add_connect_args(factory: object, conninfo: str) -> None:
    """Give the datastore's connections the parameters of ``conninfo`` (PostgreSQL only)."""
    if not conninfo or not isinstance(factory, PostgresFactory):
        return
    pool = factory.datastore.pool
    if not isinstance(pool.kwargs, dict):
        raise TypeError("the datastore's pool has no keyword arguments to extend")
    pool.kwargs = {**pool.kwargs, **conninfo_to_dict(conninfo)}
