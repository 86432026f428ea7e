"""Model catalog: schema, loader and the resolved, frozen ``Catalog``."""

from router.catalog.loader import CatalogError, load_catalog, parse_catalog
from router.catalog.model import Catalog, Model, Provider, Target, remedy
from router.catalog.schema import STRATEGIES, AutoCacheSpec, CacheSpec

__all__ = [
    "STRATEGIES",
    "AutoCacheSpec",
    "CacheSpec",
    "Catalog",
    "CatalogError",
    "Model",
    "Provider",
    "Target",
    "load_catalog",
    "parse_catalog",
    "remedy",
]
