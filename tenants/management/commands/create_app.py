import json

from django.core.management.base import BaseCommand

from tenants import services


class Command(BaseCommand):
    help = "Create a realtime app and print its app_id, key and secret."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--client-events", action="store_true", help="allow client- events")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object per app")
        parser.add_argument("--count", type=int, default=1, help="create this many apps with the same settings")
        parser.add_argument("--demo", action="store_true", help="serve the public demo page (/demo/) for it")

    def handle(self, *args, **options):
        for _ in range(options["count"]):
            app = services.create_app(options["name"], client_events=options["client_events"])
            if options["demo"]:
                app.demo_enabled = True
                app.save(update_fields=["demo_enabled"])
            data = {"app_id": app.id, "key": app.key, "secret": app.secret, "name": app.name,
                    "client_events": app.client_events}
            if options["as_json"]:
                self.stdout.write(json.dumps(data))
            else:
                for field, value in data.items():
                    self.stdout.write(f"{field}: {value}")
