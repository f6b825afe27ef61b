"""Compatibility: the routes that lived here are now one router per resource (``page``,
``moderators``, ``submissions``, ``exports``); ``router`` bundles the page, moderators and exports
for code that still includes ``moderation.router``. New code includes the routers themselves.
"""

from __future__ import annotations

from fastapi import APIRouter

from serve.routes import exports, moderators, page

router = APIRouter()
for _part in (page, moderators, exports):
    router.include_router(_part.router)
