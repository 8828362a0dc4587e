"""stripe_sync_catalog against a small stateful fake Stripe: creates once, then finds; new terms, new price."""

from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from django.core.management import CommandError, call_command

from billing.models import Plan, PlanPricing, StripeMeter

from .fake_stripe import error

pytestmark = pytest.mark.django_db


class StripeCatalog:
    """Just enough of Stripe's meters, products and prices to be found again after creation."""

    def __init__(self):
        self.meters, self.products, self.prices = [], {}, []

    def __call__(self, request):
        form, query = request.form, dict(parse_qsl(request.query))
        route = (request.method, request.path)
        if route == ("GET", "/v1/billing/meters"):
            return 200, listing("/v1/billing/meters", self.meters)
        if route == ("POST", "/v1/billing/meters"):
            meter = {"id": f"mtr_{len(self.meters) + 1}", "object": "billing.meter", "status": "active",
                     "event_name": form["event_name"]}
            self.meters.append(meter)
            return 200, meter
        if request.method == "GET" and request.path.startswith("/v1/products/"):
            product = self.products.get(request.path.rsplit("/", 1)[1])
            return (200, product) if product else (404, error("No such product", code="resource_missing"))
        if route == ("POST", "/v1/products"):
            self.products[form["id"]] = {"id": form["id"], "object": "product", "name": form["name"]}
            return 200, self.products[form["id"]]
        if route == ("GET", "/v1/prices"):
            found = [p for p in self.prices if p["lookup_key"] == query["lookup_keys[0]"] and p["active"]]
            return 200, listing("/v1/prices", found)
        if route == ("POST", "/v1/prices"):
            if form.get("transfer_lookup_key") == "true":
                for price in self.prices:
                    if price["lookup_key"] == form["lookup_key"]:
                        price["lookup_key"] = None
            price = {"id": f"price_{len(self.prices) + 1}", "object": "price", "active": True,
                     "lookup_key": form["lookup_key"], "metadata": {"tabcast_terms": form["metadata[tabcast_terms]"]}}
            self.prices.append(price)
            return 200, price
        return None


def listing(url, data):
    return {"object": "list", "url": url, "has_more": False, "data": data}


@pytest.fixture
def stripe_catalog(fake_stripe):
    fake_stripe.handler = StripeCatalog()
    return fake_stripe


def posts(fake, path):
    return [r.form for r in fake.calls("POST", path)]


def test_first_sync_creates_the_meter_products_and_prices(stripe_catalog):
    call_command("stripe_sync_catalog")

    [meter] = posts(stripe_catalog, "/v1/billing/meters")
    assert meter == {"display_name": "Tabcast peak physical connections", "event_name": "tabcast_peak_connections",
                     "default_aggregation[formula]": "last", "customer_mapping[type]": "by_id",
                     "customer_mapping[event_payload_key]": "stripe_customer_id",
                     "value_settings[event_payload_key]": "value"}
    assert StripeMeter.objects.get(event_name="tabcast_peak_connections").stripe_meter_id == "mtr_1"
    assert [p["id"] for p in posts(stripe_catalog, "/v1/products")] == ["tabcast_pro", "tabcast_business"]

    prices = {p["lookup_key"]: p for p in posts(stripe_catalog, "/v1/prices")}
    flat = prices["tabcast_pro_monthly"]
    assert (flat["unit_amount"], flat["currency"], flat["recurring[interval]"], flat["recurring[usage_type]"],
            flat["product"]) == ("4900", "usd", "month", "licensed", "tabcast_pro")
    metered = prices["tabcast_pro_peak_connections"]
    assert (metered["recurring[usage_type]"], metered["recurring[meter]"], metered["tiers_mode"]) == (
        "metered", "mtr_1", "graduated")
    assert (metered["tiers[0][up_to]"], metered["tiers[0][unit_amount]"]) == ("2000", "0")
    assert (metered["tiers[1][up_to]"], metered["tiers[1][unit_amount_decimal]"]) == ("inf", "1")
    assert prices["tabcast_business_peak_connections"]["tiers[1][unit_amount_decimal]"] == "0.5"

    pro = Plan.objects.select_related("pricing").get(code="pro")
    created = {p["lookup_key"]: p["id"] for p in stripe_catalog.handler.prices}
    assert pro.stripe_price_id == created["tabcast_pro_monthly"]
    assert pro.pricing.stripe_metered_price_id == created["tabcast_pro_peak_connections"]
    assert pro.pricing.stripe_product_id == "tabcast_pro"
    assert Plan.objects.get(code="free").stripe_price_id == ""


def test_a_second_sync_finds_everything_and_creates_nothing(stripe_catalog):
    call_command("stripe_sync_catalog")
    before = list(Plan.objects.values_list("code", "stripe_price_id"))
    created = len([r for r in stripe_catalog.requests if r.method == "POST"])

    call_command("stripe_sync_catalog")

    assert len([r for r in stripe_catalog.requests if r.method == "POST"]) == created
    assert list(Plan.objects.values_list("code", "stripe_price_id")) == before


def test_changed_terms_get_a_new_price_that_takes_over_the_lookup_key(stripe_catalog):
    call_command("stripe_sync_catalog")
    old = Plan.objects.get(code="pro").stripe_price_id
    Plan.objects.filter(code="pro").update(monthly_price_cents=5900)
    PlanPricing.objects.filter(plan__code="business").update(overage_cents_per_connection=Decimal("0.4"))

    call_command("stripe_sync_catalog")

    new_prices = posts(stripe_catalog, "/v1/prices")[4:]
    assert [(p["lookup_key"], p["transfer_lookup_key"]) for p in new_prices] == [
        ("tabcast_pro_monthly", "true"), ("tabcast_business_peak_connections", "true")]
    assert Plan.objects.get(code="pro").stripe_price_id not in ("", old)


def test_an_inactive_meter_is_reactivated_not_duplicated(stripe_catalog):
    stripe_catalog.handler.meters.append({"id": "mtr_old", "object": "billing.meter", "status": "inactive",
                                          "event_name": "tabcast_peak_connections"})
    stripe_catalog.reply("POST", "/v1/billing/meters/mtr_old/reactivate",
                         (200, {"id": "mtr_old", "object": "billing.meter", "status": "active",
                                "event_name": "tabcast_peak_connections"}))

    call_command("stripe_sync_catalog")

    assert not posts(stripe_catalog, "/v1/billing/meters")
    assert StripeMeter.objects.get().stripe_meter_id == "mtr_old"


def test_sync_needs_a_key(unconfigured):
    with pytest.raises(CommandError, match="not configured"):
        call_command("stripe_sync_catalog")
