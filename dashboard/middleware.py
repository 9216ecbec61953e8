"""Response headers that must hold for every answer, not only for the pages a view renders."""

from __future__ import annotations

from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.cache import patch_cache_control


class SecurityHeadersEverywhereMiddleware:
    """The headers pages get (nosniff, Referrer-Policy, HSTS, X-Frame-Options, CSP) on
    every response, including those that never pass the middlewares setting them.

    WhiteNoise answers static files before the inner middlewares run, and an exception
    raised inside a middleware (DisallowedHost → 400, from SecurityMiddleware's HTTPS
    redirect or CommonMiddleware) skips that middleware's own process_response. Placed
    outside them all, this runs the same process_response methods once more; each leaves
    a header that is already there alone, so pages and views' own choices are unchanged.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header_setters = [
            SecurityMiddleware(get_response),
            XFrameOptionsMiddleware(get_response),
            CSPMiddleware(get_response),
        ]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for setter in self.header_setters:
            response = setter.process_response(request, response)
        return response


class PrivateCacheMiddleware:
    """`Cache-Control: private, no-store` on every answer to a signed-in user (pages, htmx
    fragments, redirects) unless the view chose its own caching: what one person sees must
    not be kept by a shared cache or left on disk by the browser."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response


class StripNulMiddleware:
    """Removes NUL characters from the query string's names and values before any view
    (ours, the admin's list filters, a third-party app's) can hand them to the database:
    PostgreSQL text cannot hold NUL, so a stray `%00` would otherwise be a 500. Forms are
    covered by Django's own ProhibitNullCharactersValidator on every CharField."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            cleaned = QueryDict(mutable=True)
            for name, values in request.GET.lists():
                cleaned.setlist(name.replace("\x00", ""), [value.replace("\x00", "") for value in values])
            cleaned._mutable = False
            request.GET = cleaned
        return self.get_response(request)
