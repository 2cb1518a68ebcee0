"""``plantems grafana publish``: upsert the datasources, the folder and the dashboards through
Grafana's HTTP API (grafana-client) with a service-account token. Idempotent: a second run
updates in place and creates nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError
from niquests.exceptions import RequestException

__all__ = ["FOLDER_UID", "PublishError", "publish"]

FOLDER_UID = "plantems"
_NOT_FOUND = 404
_FORBIDDEN = 403


class PublishError(Exception):
    """What went wrong, with the Grafana URL and what to check; never the token."""


def _exists(call: Any, *args: Any) -> dict[str, Any] | None:
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == _NOT_FOUND:
            return None
        raise


def _upsert(api: GrafanaApi, datasources: Sequence[Mapping[str, Any]], folder_title: str,
            dashboards: Mapping[str, Mapping[str, Any]]) -> list[str]:
    done = []
    for source in datasources:
        existing = _exists(api.datasource.get_datasource_by_uid, source["uid"])
        if existing is None:
            api.datasource.create_datasource(dict(source))
            done.append(f"datasource {source['uid']}: created")
        else:
            api.datasource.update_datasource_by_uid(source["uid"], {**source, "version": existing.get("version")})
            done.append(f"datasource {source['uid']}: updated")
    if _exists(api.folder.get_folder, FOLDER_UID) is None:
        api.folder.create_folder(folder_title, uid=FOLDER_UID)
        done.append(f"folder {FOLDER_UID}: created")
    for name, model in dashboards.items():
        api.dashboard.update_dashboard({"dashboard": {**model, "id": None}, "folderUid": FOLDER_UID,
                                        "overwrite": True, "message": "plantems grafana publish"})
        done.append(f"dashboard {model.get('uid', name)}: published")
    return done


def publish(url: str, token: str, *, datasources: Sequence[Mapping[str, Any]],
            dashboards: Mapping[str, Mapping[str, Any]], folder_title: str = "plantems",
            timeout_s: float = 10.0) -> list[str]:
    """Upsert everything; what was done, in order. PublishError names the URL and the likely cause."""
    api = GrafanaApi.from_url(url=url, credential=token, timeout=timeout_s)
    try:
        build = api.health.check()  # /api/frontend/settings: also proves the token
        if not isinstance(build, dict) or "version" not in build:
            raise PublishError(f"{url}: /api/frontend/settings did not answer as Grafana does; is this Grafana's "
                               "root URL?")
        return _upsert(api, datasources, folder_title, dashboards)
    except GrafanaUnauthorizedError:
        raise PublishError(f"{url}: Grafana refused the token (HTTP 401); create a service-account token and put it "
                           "in PLANTEMS_GRAFANA_TOKEN") from None
    except GrafanaClientError as exc:
        hint = ("the service account needs the Admin role to manage datasources (or Editor with datasource "
                "permissions)" if exc.status_code == _FORBIDDEN else str(exc.message)[:200])
        raise PublishError(f"{url}: HTTP {exc.status_code}: {hint}") from None
    except GrafanaException as exc:
        raise PublishError(f"{url}: {exc.message}") from None
    except RequestException as exc:
        raise PublishError(f"{url}: cannot reach Grafana ({type(exc).__name__}); check the URL and that Grafana "
                           "runs") from None
