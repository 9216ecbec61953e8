"""HTTP face of the sandbox provider: the /v1/videos API of an OpenAI-compatible gateway.

Mounted at /sandbox/v1/ only when VIDEO_SANDBOX is on. The behaviour lives in jobs.py;
these views authenticate, parse, and shape errors the way real providers do, so the poller
and client meet the same answers here as in production.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import jobs

# The sample files the content endpoint serves for every completed video.
CONTENT = {
    "video": ("sandbox/sample.mp4", "video/mp4", "mp4"),
    "thumbnail": ("sandbox/thumbnail.jpg", "image/jpeg", "jpg"),
    "spritesheet": ("sandbox/spritesheet.jpg", "image/jpeg", "jpg"),
}
SIZE_PATTERN = re.compile(r"\d{2,5}x\d{2,5}")

View = Callable[..., HttpResponse]


def api_error(status: int, message: str, code: str | None, param: str | None = None) -> JsonResponse:
    error: dict[str, Any] = {"message": message, "type": "invalid_request_error", "code": code}
    if param is not None:
        error["param"] = param
    return JsonResponse({"error": error}, status=status)


def not_found(video_id: str) -> JsonResponse:
    return api_error(404, f"Video with id '{video_id}' not found.", "video_not_found")


def api_view(*methods: str) -> Callable[[View], View]:
    """An API endpoint: CSRF-exempt (no cookies involved), the given methods, and a Bearer
    token that must match VIDEO_API_KEY when one is configured."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                response = api_error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    None,
                )
            elif settings.VIDEO_API_KEY and not hmac.compare_digest(
                token.strip().encode(), settings.VIDEO_API_KEY.encode()
            ):
                # The message never repeats either key: responses end up in logs.
                response = api_error(401, "Incorrect API key provided.", "invalid_api_key")
            else:
                return view(request, *args, **kwargs)
            response["WWW-Authenticate"] = 'Bearer realm="sandbox"'
            return response

        return csrf_exempt(require_http_methods(list(methods))(wrapper))

    return decorate


def _api_base(request: HttpRequest) -> str:
    # Absolute and derived from the request, so links work behind whatever host and
    # scheme (X-Forwarded-Proto) the app is reached at.
    return request.build_absolute_uri(reverse("sandbox:videos")).removesuffix("/videos")


def _read_body(request: HttpRequest) -> dict[str, Any]:
    """The request's parameters from JSON, multipart or urlencoded bodies alike."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise jobs.InvalidRequest(
                "We could not parse the JSON body of your request.", code="invalid_json"
            ) from exc
        if not isinstance(data, dict):
            raise jobs.InvalidRequest("The request body must be a JSON object.", code="invalid_json")
        return data
    # input_reference arrives in request.FILES; accepted and ignored, as the sample
    # video does not depend on it.
    return request.POST.dict()


def _text(data: dict[str, Any], name: str, default: str, max_length: int) -> str:
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise jobs.InvalidRequest(f"Invalid type for '{name}'.", name)
    text = str(value).strip()
    if len(text) > max_length:
        raise jobs.InvalidRequest(f"'{name}' is too long (at most {max_length} characters).", name)
    return text


def _create_params(data: dict[str, Any]) -> dict[str, Any]:
    prompt = _text(data, "prompt", "", 32_000)
    if not prompt:
        raise jobs.InvalidRequest(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    seconds = _text(data, "seconds", "4", 8)
    try:
        valid_seconds = 0 < float(seconds) <= 600
    except ValueError:
        valid_seconds = False
    if not valid_seconds:
        raise jobs.InvalidRequest("'seconds' must be a number of seconds, e.g. '4' or '8'.", "seconds")
    size = _text(data, "size", "1280x720", 32)
    if not SIZE_PATTERN.fullmatch(size):
        raise jobs.InvalidRequest("'size' must look like WIDTHxHEIGHT, e.g. '1280x720'.", "size")
    params: dict[str, Any] = {
        "prompt": prompt,
        "model": _text(data, "model", "sandbox-video-1", 100),
        "seconds": seconds,
        "size": size,
    }
    # Sandbox-only extensions, so end-to-end tests can ask for a quick or a failing job
    # instead of waiting on the dice.
    duration = _text(data, "sandbox_duration_seconds", "", 6)
    if duration:
        if not duration.isdigit() or not 1 <= int(duration) <= 3600:
            raise jobs.InvalidRequest(
                "'sandbox_duration_seconds' must be whole seconds, 1-3600.", "sandbox_duration_seconds"
            )
        params["duration_seconds"] = int(duration)
    for name, choices in (("outcome", jobs.OUTCOMES), ("vocabulary", jobs.VOCABULARIES)):
        value = _text(data, f"sandbox_{name}", "", 16)
        if value and value not in choices:
            raise jobs.InvalidRequest(
                f"'sandbox_{name}' must be one of {', '.join(choices)}.", f"sandbox_{name}"
            )
        params[name] = value or None
    return params


@api_view("GET", "POST")
def videos(request: HttpRequest) -> HttpResponse:
    """GET lists the videos; POST starts one."""
    now = timezone.now()
    try:
        if request.method == "POST":
            params = _create_params(_read_body(request))
            video = jobs.create_video(now=now, **params)
            return JsonResponse(jobs.video_payload(video, now, base_url=_api_base(request)))
        limit = request.GET.get("limit", str(jobs.DEFAULT_PAGE_SIZE))
        if not limit.isdigit():
            raise jobs.InvalidRequest("limit must be a whole number.", "limit")
        page = jobs.list_videos(
            now=now,
            base_url=_api_base(request),
            after=request.GET.get("after") or None,
            limit=int(limit),
            order=request.GET.get("order", "desc"),
        )
        return JsonResponse(page)
    except jobs.InvalidRequest as exc:
        return api_error(400, exc.message, exc.code, exc.param)


@api_view("GET", "DELETE")
def video(request: HttpRequest, video_id: str) -> HttpResponse:
    """GET answers the video's status; DELETE removes it."""
    found = jobs.get_video(video_id)
    if found is None:
        return not_found(video_id)
    if request.method == "DELETE":
        return JsonResponse(jobs.delete_video(found))
    return JsonResponse(jobs.video_payload(found, timezone.now(), base_url=_api_base(request)))


@api_view("POST")
def remix(request: HttpRequest, video_id: str) -> HttpResponse:
    source = jobs.get_video(video_id)
    if source is None:
        return not_found(video_id)
    try:
        prompt = _text(_read_body(request), "prompt", "", 32_000)
        if not prompt:
            raise jobs.InvalidRequest(
                "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
            )
        payload = jobs.remix_video(source, prompt=prompt, now=timezone.now(), base_url=_api_base(request))
    except jobs.InvalidRequest as exc:
        return api_error(400, exc.message, exc.code, exc.param)
    return JsonResponse(payload)


@csrf_exempt
@require_http_methods(["GET"])
def content(request: HttpRequest, video_id: str) -> HttpResponse:
    """The bytes of a completed video, with the API key or through a signed link."""
    expires, signature = request.GET.get("expires", ""), request.GET.get("signature", "")
    if signature and jobs.signed_link_is_valid(video_id, expires, signature, timezone.now()):
        return _content(request, video_id)
    return _content_with_key(request, video_id)


def _content(request: HttpRequest, video_id: str) -> HttpResponse:
    """The same small sample for every completed video."""
    found = jobs.get_video(video_id)
    if found is None:
        return not_found(video_id)
    variant = request.GET.get("variant", "video")
    if variant not in CONTENT:
        return api_error(
            400, "variant must be one of video, thumbnail, spritesheet.", "invalid_value", "variant"
        )
    status, _ = jobs.phase(found, timezone.now())
    if status == "failed":
        return api_error(404, f"Video '{video_id}' failed; it has no content.", "video_not_found")
    if status != "completed":
        return api_error(404, f"Video '{video_id}' is not ready yet.", "video_not_ready")
    name, content_type, extension = CONTENT[variant]
    path = finders.find(name)
    if not path:
        # The sample files ship in sandbox/static/sandbox/; without them this is a broken checkout.
        raise FileNotFoundError(f"Sandbox sample {name} is missing from the static files.")
    return FileResponse(open(path, "rb"), content_type=content_type, filename=f"{found.video_id}.{extension}")


_content_with_key = api_view("GET")(_content)
