"""The documentation that ships with Tabcast, rendered at /docs/: README, protocol, SDK, operations.

The Markdown files live in the repository (and in the Docker image), so every install serves
the docs of the version it runs, with no outside site to keep in step. Links between them
(``billing/METERING.md#quotas``) are rewritten to these pages; other links are left as they are.
"""

import functools
import re

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe
from markdown_it import MarkdownIt

# slug -> (title, path from the repository root, one-line summary for the index)
DOCS = {
    "readme": ("Getting started", "README.md", "Run Tabcast, connect, publish, configure it."),
    "protocol": ("Protocol", "docs/protocol.md", "The Pusher protocol as Tabcast speaks it: events, errors, HTTP API."),
    "sdk": ("Browser SDK", "sdk_js/README.md", "One WebSocket shared by every tab: install, options, transports."),
    "metering": ("Usage and quotas", "billing/METERING.md", "What is counted, plan quotas, and how usage is billed."),
    "recovery": ("Recovery", "docs/recovery.md",
                 "Channel history, resuming by position, and the tabcast:resumed signal: never a silent loss."),
    "deploy": ("Deploying", "docs/deploy.md", "Deploys that lose nothing: draining, rolling restarts, Kubernetes."),
    "redis": ("Redis, Cluster and Sentinel", "docs/redis.md", "One Redis, a Redis Cluster or Sentinel: setup and failover."),
    "capacity": ("Capacity", "docs/capacity.md",
                 "Processes, cores, Redis masters and memory for 100k, 1M and 10M connections, and the check."),
    "metrics": ("Metrics", "docs/metrics.md", "What GET /metrics exports for Prometheus."),
    "monitoring": ("Monitoring", "docs/monitoring.md", "Logs, alerts and the Grafana dashboard for operators."),
    "security": ("Security", "docs/security.md", "The threat model and every limit, with its default and its test."),
}
BY_PATH = {path: slug for slug, (_, path, _) in DOCS.items()}


def _slugify(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _rewrite_link(href: str, here: str) -> str:
    """``docs/protocol.md#x`` (relative to the current file) -> ``/docs/protocol/#x``."""
    if re.match(r"[a-z][a-z0-9+.-]*:|#|/", href):  # absolute, in-page or rooted: as is
        return href
    path, _, anchor = href.partition("#")
    base = here.rsplit("/", 1)[0] + "/" if "/" in here else ""
    parts = []
    for part in (base + path).split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    slug = BY_PATH.get("/".join(parts))
    if slug is None:
        return href
    return reverse("tenants:doc", args=[slug]) + (f"#{anchor}" if anchor else "")


@functools.lru_cache(maxsize=len(DOCS))
def _render(slug: str, mtime: float) -> str:
    _, path, _ = DOCS[slug]
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse((settings.BASE_DIR / path).read_text(encoding="utf-8"))
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", _slugify(tokens[i + 1].content))
        for child in token.children or ():
            if child.type == "link_open":
                child.attrSet("href", _rewrite_link(child.attrGet("href") or "", path))
    return md.renderer.render(tokens, md.options, {})


@require_safe
def doc_index(request):
    return render(request, "tenants/docs.html", {"docs": _shipped(), "slug": None})


def _shipped() -> dict:
    """The documents this install has a copy of."""
    return {slug: doc for slug, doc in DOCS.items() if (settings.BASE_DIR / doc[1]).is_file()}


@require_safe
def doc(request, slug: str):
    if slug not in DOCS:
        raise Http404("No such document")
    title, path, _ = DOCS[slug]
    try:
        mtime = (settings.BASE_DIR / path).stat().st_mtime
    except OSError:
        raise Http404("This install has no copy of that document") from None
    return render(request, "tenants/docs.html", {
        "docs": _shipped(), "slug": slug, "title": title, "path": path, "html": mark_safe(_render(slug, mtime))})  # noqa: S308 - our own Markdown, raw HTML disabled
