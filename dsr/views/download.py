"""Export archive downloads: the subject's login or a code sent to their email, 7 days.

The link in the email is a signed token naming the archive. An account holder's archive
needs that account's login (anyone else: 404, as if it did not exist); a guest's needs a
one-time code sent to the request's email address, remembered in the session. Every
download is audited (services), and served privately: streamed from the local storage,
or a presigned S3 link of at most five minutes.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from common.http import client_ip
from dsr.models import ExportArchive
from dsr.services.export import (
    Download,
    DownloadRefused,
    export_archive_for_token,
    export_archive_url,
    export_download_record,
    export_open,
)

PURPOSE = "download"


TITLES = {404: "Not found", 410: "Link expired", 503: "Try again later"}


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    title = TITLES.get(status, "Not available")
    return render(
        request,
        "dsr/download_refused.html",
        {"title": title, "message": message, "status": status},
        status=status,
    )


def _session_key(archive: ExportArchive) -> str:
    return f"dsr_download_{archive.pk}"


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "your email address"


@never_cache
@require_http_methods(["GET", "POST"])
def archive_download(request: HttpRequest, token: str) -> HttpResponseBase:
    try:
        archive = export_archive_for_token(token=token)
    except DownloadRefused as exc:
        return _refused(request, exc.message, exc.status)
    ticket = archive.ticket
    if ticket.user_id is not None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.user.pk != ticket.user_id:
            return _refused(request, "There is no such archive.", 404)
        allowed = True
    else:
        if request.method == "POST":
            return _guest_post(request, archive)
        allowed = request.session.get(_session_key(archive)) is True
    if allowed and request.GET.get("get") == "1":
        return _serve(request, archive)
    return render(
        request,
        "dsr/download.html",
        {
            "archive": archive,
            "ticket": ticket,
            "allowed": allowed,
            "masked_email": _masked(ticket.email),
            "contents": archive.contents or {},
        },
    )


def _guest_post(request: HttpRequest, archive: ExportArchive) -> HttpResponseBase:
    """A guest asks for a code, or enters it; the code proves control of the address."""
    from dsr.services.challenges import (
        ChallengeFailed,
        challenge_check,
        challenge_email_after_commit,
        challenge_issue,
    )

    ticket = archive.ticket
    if request.POST.get("action") == "send":
        code = challenge_issue(ticket=ticket, purpose=PURPOSE)
        challenge_email_after_commit(ticket=ticket, code=code, template="download_code")
        messages.info(request, f"We sent a code to {_masked(ticket.email)}.")
        return redirect(request.path)
    try:
        challenge_check(ticket=ticket, code=request.POST.get("code", ""), purpose=PURPOSE)
    except ChallengeFailed as exc:
        return render(
            request,
            "dsr/download.html",
            {
                "archive": archive,
                "ticket": ticket,
                "allowed": False,
                "masked_email": _masked(ticket.email),
                "error": exc.message,
                "code_sent": True,
            },
            status=403 if exc.locked else 400,
        )
    request.session.cycle_key()  # a new session id once it carries the right to download
    request.session[_session_key(archive)] = True
    return redirect(request.path)


def _serve(request: HttpRequest, archive: ExportArchive) -> HttpResponseBase:
    user = request.user if request.user.is_authenticated else None
    planned = Download(archive.file.name or "", f"{archive.ticket.reference.lower()}-data.zip")
    presigned = export_archive_url(download=planned)
    fh = None
    if presigned is None:
        try:
            fh = export_open(download=planned)
        except FileNotFoundError:
            return _refused(
                request, "This archive was deleted. You can ask for a new copy of your data.", 410
            )
        except OSError:
            return _refused(request, "The archive cannot be read right now; try again soon.", 503)
    try:
        download = export_download_record(
            archive=archive,
            actor=user,
            ip_address=client_ip(request),
        )
    except Exception:
        if fh is not None:
            fh.close()
        raise
    if presigned is not None:
        return redirect(presigned)
    response = FileResponse(
        fh, as_attachment=True, filename=download.filename, content_type="application/zip"
    )
    response["Cache-Control"] = "private, no-store"
    return response
