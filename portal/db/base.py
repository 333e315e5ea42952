"""Database wrapper: the stock PostgreSQL backend with schema-aware parts."""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

from portal.outage import guarded_connect

from .introspection import DatabaseIntrospection
from .pool import PortalPool, observed_connection_class
from .schema import DatabaseSchemaEditor


class DatabaseWrapper(base.DatabaseWrapper):
    introspection_class = DatabaseIntrospection
    SchemaEditorClass = DatabaseSchemaEditor

    @property
    def pool(self):
        """Django's pool, as a :class:`PortalPool` whose connection attempts are observed
        (portal/db/pool.py); otherwise created as Django creates it."""
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        # Django's class-level registry of pools, shared with its close_pool().
        pools: dict = self._connection_pools  # type: ignore[attr-defined]
        if self.alias not in pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            options = {} if pool_options is True else dict(pool_options)
            connect_kwargs = self.get_connection_params()
            # Autocommit, as Django's own pool: Django sets it per connection later on.
            connect_kwargs["autocommit"] = True
            pool = PortalPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                check=None,
                checked=self.settings_dict["CONN_HEALTH_CHECKS"],
                connection_class=observed_connection_class(self.alias),
                **options,
            )
            # setdefault: two threads creating it at once keep the first (not opened yet).
            pools.setdefault(self.alias, pool)
        return pools[self.alias]

    def get_new_connection(self, conn_params):
        # In the web process, a server that just failed to answer is not asked again
        # by every later query of the same requests (portal/outage.py).
        parent = super().get_new_connection
        return guarded_connect(
            self.alias, lambda: parent(conn_params), pooled=self.pool is not None
        )
