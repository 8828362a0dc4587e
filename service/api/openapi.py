"""How the OpenAPI schema (/api/schema) describes the API's two ways to authenticate.

Imported by ApiConfig.ready(): drf-spectacular finds extensions by subclassing, and without
these it warns about every view (``manage.py check --deploy`` must be clean).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PusherSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "service.api.authentication.PusherSignature"
    name = "pusherSignature"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "auth_signature",
                "description": "Pusher's request signature: auth_key, auth_timestamp, auth_version=1.0, "
                               "body_md5 (with a body) and auth_signature = HMAC-SHA256 of "
                               "METHOD\\nPATH\\nsorted query with the app secret."}


class KeySecretScheme(OpenApiAuthenticationExtension):
    target_class = "service.api.authentication.KeySecret"
    name = "keySecret"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic",
                "description": "The app key as user name and its secret as password "
                               "(or Authorization: Bearer KEY:SECRET)."}
