"""Customer pages for orders: thin, each calls one service and answers 4xx on bad input."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from common.http import AuthedRequest, client_ip
from images.passport_specs import DOCUMENT_SPECS
from images.selectors import portfolio_order_section
from images.services.access import result_visible_to_customer
from images.services.intake import (
    UploadRefused,
    passport_order_start,
    photo_instructions_update,
    photos_add,
)
from orders.forms import (
    GuestEmailForm,
    PassportForm,
    PhotoNoteForm,
    PhotoUploadForm,
    RetouchOrderForm,
    RevisionForm,
)
from orders.gateways.base import GatewayRequestInvalid, GatewayUnavailable
from orders.models import Order, OrderStatus
from orders.selectors import (
    guest_orders,
    guest_orders_remember,
    order_customer_actions,
    order_get_for_viewer,
    order_list_for_customer,
)
from orders.services import (
    TransitionRefused,
    order_accept,
    order_cancel,
    order_create_retouch,
    order_request_revision,
    order_submit,
    payment_start,
)
from orders.tokens import guest_order_from_token


def _order(request: HttpRequest, reference: str) -> Order:
    return order_get_for_viewer(
        user=request.user, reference=reference, guest_refs=guest_orders(request.session)
    )


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _detail(request: HttpRequest, order: Order, status: int = 200, **forms: Any) -> HttpResponse:
    results = [r for r in order.results.all() if result_visible_to_customer(r)]
    processing = any(p.status in ("processing", "pending_scan") for p in order.photos.all())
    context = {
        "order": order,
        "results": results,
        "processing": processing,
        "document": DOCUMENT_SPECS.get(order.document),
        # The buttons: the same list the API's order detail gives.
        "actions": order_customer_actions(order),
        "upload_form": forms.get("upload_form") or PhotoUploadForm(),
        "email_form": forms.get("email_form") or GuestEmailForm(),
        "revision_form": forms.get("revision_form") or RevisionForm(),
        "note_form": PhotoNoteForm,
        "upload_error": forms.get("upload_error", ""),
        # IMG-3: per-image permission for the public portfolio (delivered orders only).
        "portfolio": portfolio_order_section(user=request.user, order=order, results=results),
    }
    return render(request, "orders/detail.html", context, status=status)


@login_required
def order_list(request: AuthedRequest) -> HttpResponse:
    orders = order_list_for_customer(user=request.user)
    return render(request, "orders/list.html", {"orders": orders})


@login_required
@require_http_methods(["GET", "POST"])
def retouch_new(request: AuthedRequest) -> HttpResponse:
    form = RetouchOrderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            order = order_create_retouch(
                actor=request.user, instructions=form.cleaned_data["instructions"]
            )
        except TransitionRefused as exc:
            messages.error(request, exc.message)
            return render(request, "orders/retouch_new.html", {"form": form}, status=403)
        messages.success(request, "Order started. Now add your photos.")
        return redirect("orders:detail", order.reference)
    status = 400 if request.method == "POST" else 200
    return render(request, "orders/retouch_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def passport_new(request: HttpRequest) -> HttpResponse:
    """Guests welcome: no personal data asked until they buy (ACC-4)."""
    form = PassportForm(request.POST or None)
    if request.method == "POST":
        selfie = request.FILES.get("selfie")
        if form.is_valid() and selfie is not None:
            try:
                order = passport_order_start(
                    actor=_actor(request),
                    document=form.cleaned_data["document"],
                    selfie=selfie,
                    filename=selfie.name,
                    ip_address=client_ip(request),
                )
            except (TransitionRefused, UploadRefused) as exc:
                context = {"form": form, "error": exc.message}
                return render(request, "orders/passport_new.html", context, status=400)
            if order.is_guest:
                guest_orders_remember(request.session, order.reference)
            return redirect("orders:detail", order.reference)
        error = "" if selfie is not None else "Choose a selfie to upload."
        return render(
            request, "orders/passport_new.html", {"form": form, "error": error}, status=400
        )
    return render(request, "orders/passport_new.html", {"form": form})


@never_cache
def order_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return _detail(request, _order(request, reference))


@require_POST
def photos_upload(request: HttpRequest, reference: str) -> HttpResponse:
    order = _order(request, reference)
    form = PhotoUploadForm(request.POST)
    files = request.FILES.getlist("photos")
    if not form.is_valid():
        return _detail(request, order, status=400, upload_form=form)
    note = form.cleaned_data["note"]
    try:
        added = photos_add(
            actor=_actor(request),
            order=order,
            files=[(f, f.name, note) for f in files],
            ip_address=client_ip(request),
        )
    except UploadRefused as exc:
        return _detail(request, order, status=400, upload_form=form, upload_error=exc.message)
    messages.success(request, f"{len(added)} photo(s) received. They are being checked.")
    return redirect("orders:detail", order.reference)


@require_POST
def photo_note(request: HttpRequest, reference: str, photo_id: int) -> HttpResponse:
    order = _order(request, reference)
    photo = get_object_or_404(order.photos.all(), pk=photo_id)
    form = PhotoNoteForm(request.POST)
    try:
        if not form.is_valid():
            raise UploadRefused("Instructions are at most 2000 characters.")
        photo_instructions_update(
            actor=_actor(request), order=order, photo=photo, text=form.cleaned_data["instructions"]
        )
    except UploadRefused as exc:
        messages.error(request, exc.message)
        return _detail(request, order, status=400)
    messages.success(request, "Instructions saved.")
    return redirect("orders:detail", order.reference)


def _act(request: HttpRequest, order: Order, action: Any, done: str, **kwargs: Any) -> HttpResponse:
    try:
        action(actor=_actor(request), order=order, ip_address=client_ip(request), **kwargs)
    except TransitionRefused as exc:
        messages.error(request, exc.message)
        return _detail(request, _order(request, order.reference), status=409)
    messages.success(request, done)
    return redirect("orders:detail", order.reference)


@require_POST
def order_submit_view(request: HttpRequest, reference: str) -> HttpResponse:
    order = _order(request, reference)
    email = ""
    if order.is_guest:
        form = GuestEmailForm(request.POST)
        if not form.is_valid():
            return _detail(request, order, status=400, email_form=form)
        email = form.cleaned_data["email"]
    return _act(request, order, order_submit, "Order submitted.", guest_email=email)


@require_POST
def order_cancel_view(request: HttpRequest, reference: str) -> HttpResponse:
    return _act(request, _order(request, reference), order_cancel, "Order cancelled.")


@login_required
@require_POST
def order_revision_view(request: AuthedRequest, reference: str) -> HttpResponse:
    order = _order(request, reference)
    form = RevisionForm(request.POST)
    if not form.is_valid():
        return _detail(request, order, status=400, revision_form=form)
    return _act(
        request,
        order,
        order_request_revision,
        "Revision requested.",
        comment=form.cleaned_data["comment"],
    )


@login_required
@require_POST
def order_accept_view(request: AuthedRequest, reference: str) -> HttpResponse:
    return _act(
        request,
        _order(request, reference),
        order_accept,
        "Thank you! Your files are ready to download.",
    )


@require_POST
def order_pay(request: HttpRequest, reference: str) -> HttpResponseBase:
    order = _order(request, reference)
    try:
        url = payment_start(actor=_actor(request), order=order)
    except TransitionRefused as exc:
        messages.error(request, exc.message)
        return _detail(request, order, status=409)
    except GatewayRequestInvalid as exc:
        messages.error(request, f"The payment provider refused the request: {exc}")
        return _detail(request, order, status=400)
    except GatewayUnavailable:
        messages.error(
            request, "The payment provider cannot be reached right now. Please try again soon."
        )
        return _detail(request, order, status=503)
    return redirect(url)


@never_cache
def order_paid(request: HttpRequest, reference: str) -> HttpResponse:
    """Where the gateway sends the customer back; the webhook is what marks it paid."""
    order = _order(request, reference)
    if order.status == OrderStatus.SUBMITTED:
        messages.info(request, "Thank you: we are waiting for the payment confirmation.")
    return redirect("orders:detail", order.reference)


def guest_access(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link of a guest order: opens it in this browser (no account needed)."""
    found = guest_order_from_token(token)
    order = None
    if found is not None:
        order = Order.objects.filter(
            reference=found[0], customer__isnull=True, storage_token__startswith=found[1]
        ).first()
    if order is None:
        return render(request, "orders/link_invalid.html", status=404)
    guest_orders_remember(request.session, order.reference)
    return redirect("orders:detail", order.reference)


@never_cache
def invoice_view(request: HttpRequest, reference: str, number: int) -> HttpResponse:
    order = _order(request, reference)
    invoice = get_object_or_404(order.invoices.all(), number=number)
    return render(request, "orders/invoice.html", {"invoice": invoice, "order": order})
