"""``inbox serve``: runs one instance until SIGINT or SIGTERM, then shuts down in order."""

from __future__ import annotations

from aiohttp import web
from aiohttp.log import access_logger

from inbox.accounts import NewOperator
from inbox.app import build
from inbox.config import Settings

__all__ = ["serve"]


def serve(settings: Settings) -> int:
    url = settings.effective_public_url

    def announce_admin(created: NewOperator) -> None:
        print(
            "\nThe store was empty, so an administrator was created. Shown once:\n"
            f"  email:     {created.operator.email}\n"
            f"  password:  {created.password}\n"
            f"  API token: {created.api_token}\n"
            f"  try: curl -H 'Authorization: Bearer {created.api_token}' {url}/api/v1/conversations\n",
            flush=True,
        )

    inbox = build(settings, on_admin_created=announce_admin)

    async def announce(_: web.Application) -> None:
        smtp = f"{inbox.smtp.host}:{inbox.smtp.port}" if inbox.smtp else "off"
        print(
            f"Inbox is serving on {url}, SMTP intake on {smtp} (store: {settings.effective_database_url})", flush=True
        )

    inbox.web.on_startup.append(announce)
    web.run_app(
        inbox.web,
        host=settings.http_host,
        port=settings.http_port,
        access_log=access_logger if settings.access_log else None,
        print=None,
    )
    return 0
