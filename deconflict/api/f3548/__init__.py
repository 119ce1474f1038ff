"""The ASTM F3548-21 DSS interface (strategic coordination) under /dss/v1, over the
same services as the native API; served only when token verification is configured."""

from deconflict.api.f3548.auth import SCOPES, AuthConfig, Claims, Scope, VerifyKey, load_keys
from deconflict.api.f3548.routes import PREFIX, router

__all__ = ["PREFIX", "SCOPES", "AuthConfig", "Claims", "Scope", "VerifyKey", "load_keys", "router"]
