"""The exception hierarchy, its attributes, and the module's public surface."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer

SUBCLASSES = {
    lo.NotRegistered: "NOT_REGISTERED",
    lo.Revoked: "REVOKED",
    lo.SecretMissing: "SECRET_MISSING",
    lo.InvalidStoredToken: "INVALID_STORED_TOKEN",
    lo.ReauthorizationRequired: "REAUTHORIZATION_REQUIRED",
    lo.TokenEndpointError: "TOKEN_ENDPOINT",
    lo.TransportError: "TRANSPORT",
    lo.StoreError: "STORE",
    lo.InvalidInput: "INVALID_INPUT",
    lo.AuthorizationError: "AUTHORIZATION",
    lo.WebhookSignatureError: "WEBHOOK_SIGNATURE",
    lo.WebhookStaleError: "WEBHOOK_STALE",
    lo.WebhookMalformedError: "WEBHOOK_MALFORMED",
    lo.InternalError: "INTERNAL",
}


def test_hierarchy_and_codes() -> None:
    assert issubclass(lo.LinearOAuthError, Exception)
    assert not issubclass(lo.LinearOAuthError, ValueError)
    for cls, code in SUBCLASSES.items():
        assert issubclass(cls, lo.LinearOAuthError), cls
        assert cls.code == code
        assert cls.__module__ == "linear_oauth"
        assert getattr(lo, cls.__name__) is cls
        assert cls.__doc__
    assert issubclass(lo.InvalidInput, ValueError)
    assert [c for c in SUBCLASSES if issubclass(c, ValueError)] == [lo.InvalidInput]
    assert len(set(SUBCLASSES)) == len(SUBCLASSES)


def test_the_module_matches_the_hosts_error_table() -> None:
    """Every row of the host's ERROR_KINDS is a class here, exported, typed in
    the .pyi, with the table's code; nothing else is."""
    from linear_oauth import _native

    table = _native._error_kinds()  # type: ignore[attr-defined]
    assert {code for code, _, _ in table} == set(SUBCLASSES.values())
    pyi = (Path(lo.__file__).parent / "_native.pyi").read_text()
    for code, name, _exit in table:
        cls = getattr(lo, name)
        assert cls.code == code and SUBCLASSES[cls] == code
        assert name in lo.__all__
        assert f"class {name}(LinearOAuthError" in pyi, name
    declared = {line.split("(")[0][6:] for line in pyi.splitlines() if line.startswith("class ") and "(LinearOAuthError" in line}
    assert declared == {name for _, name, _ in table}


def test_every_option_of_the_host_is_a_typed_keyword(tmp_path: Path) -> None:
    from linear_oauth import _native

    pyi = (Path(lo.__file__).parent / "_native.pyi").read_text()
    table = _native._settings()  # type: ignore[attr-defined]
    assert len(table) >= 14
    declared = pyi[pyi.index("class Resolver:") :]
    declared = declared[: declared.index(") -> Resolver:")]
    types = {"text": "str", "seconds": "float", "bytes": "int", "count": "int", "flag": "bool"}
    for name, kind, default in table:
        assert f"{name}: {types[kind]} | None = None" in declared, name
        if kind == "seconds":
            # Accepted at its default by the constructor; refused when negative, by its own name.
            lo.Resolver(store=f"file:{tmp_path}", **{name: float(default)})
            with pytest.raises(lo.InvalidInput, match=name):
                lo.Resolver(store=f"file:{tmp_path}", **{name: -1.0})
        if kind == "bytes":
            lo.Resolver(store=f"file:{tmp_path}", **{name: int(default)})
            for bad in (1024, -1, 2**80):
                with pytest.raises(lo.InvalidInput, match=name):
                    lo.Resolver(store=f"file:{tmp_path}", **{name: bad})
            with pytest.raises(TypeError, match=name):
                lo.Resolver(store=f"file:{tmp_path}", **{name: "64MiB"})
        if kind == "flag":
            lo.Resolver(store=f"file:{tmp_path}", **{name: True})
            with pytest.raises(TypeError, match=name):
                lo.Resolver(store=f"file:{tmp_path}", **{name: 1})
        if kind == "count":
            lo.Resolver(store=f"file:{tmp_path}", **{name: int(default)})
            for bad in (0, -1, 2.5, 2**80):
                with pytest.raises((lo.InvalidInput, TypeError), match=name):
                    lo.Resolver(store=f"file:{tmp_path}", **{name: bad})
    # Exactly the table: nothing declared that the host does not take.
    keywords = {line.strip().split(":")[0] for line in declared.splitlines() if " | None = None" in line}
    assert keywords == {name for name, _, _ in table}
    with pytest.raises(TypeError, match="unexpected keyword argument 'http_timeout'"):
        lo.Resolver(store=f"file:{tmp_path}", http_timeout=5)


def test_attribute_defaults_exist_on_the_classes() -> None:
    assert lo.InvalidStoredToken.invalid_fields == ()
    for cls in (lo.TokenEndpointError, lo.AuthorizationError):
        assert (cls.status, cls.error, cls.description) == (0, None, None)


def test_raised_errors_carry_their_attributes(server: TestServer, store: Store, make_resolver: Any) -> None:
    r = make_resolver()
    store.put_secret("half", '{"access_token":"x","scope":""}')
    with pytest.raises(lo.InvalidStoredToken) as bad:
        r.resolve_secret("half")
    assert isinstance(bad.value.invalid_fields, tuple) and len(bad.value.invalid_fields) == 10
    assert "scope" in bad.value.invalid_fields and "access_token" not in bad.value.invalid_fields
    assert bad.value.missing_fields == bad.value.invalid_fields, "the old name still works"
    assert all(f in str(bad.value) for f in bad.value.invalid_fields), str(bad.value)
    assert bad.value.code == "INVALID_STORED_TOKEN"

    s = store.seed("acme", -5)  # expired: a 502 cannot be served around
    server.faults(fail_next={"count": 3, "status": 502, "body": "<html>bad gateway</html>"})
    with pytest.raises(lo.TokenEndpointError) as endpoint:
        r.resolve(s.workspace_id)
    assert endpoint.value.status == 502
    assert endpoint.value.error is None
    assert isinstance(str(endpoint.value), str) and "502" in str(endpoint.value)

    with pytest.raises(lo.NotRegistered) as nr:
        r.resolve("org-missing")
    assert nr.value.code == "NOT_REGISTERED"
    assert "org-missing" in str(nr.value)
    assert nr.value.args == (str(nr.value),)


def test_errors_pickle_round_trip(store: Store, make_resolver: Any) -> None:
    with pytest.raises(lo.SecretMissing) as info:
        make_resolver().resolve_secret("absent")
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is lo.SecretMissing and str(again) == str(info.value)


def test_store_errors_are_typed(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(lo.StoreError, match="not a directory"):
        lo.Resolver(store=f"file:{blocker}")


def test_token_endpoint_errors_carry_retry_after(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", -5)  # expired: nothing to serve around the failure
    r = make_resolver()
    server.faults(fail_next={"count": 3, "status": 429}, fail_retry_after="120")
    with pytest.raises(lo.TokenEndpointError) as e:
        r.resolve(s.workspace_id)
    assert e.value.status == 429
    assert e.value.retry_after is not None and 100 < e.value.retry_after <= 120
    server.faults(fail_next={"count": 1, "status": 400}, fail_retry_after="")
    s2 = store.seed("beta", -5)
    with pytest.raises(lo.TokenEndpointError) as e2:
        r.resolve(s2.workspace_id)
    assert e2.value.retry_after is None


def test_public_surface() -> None:
    assert lo.__version__
    assert all(hasattr(lo, name) for name in lo.__all__)
    assert set(lo.__all__) <= set(dir(lo))
    for name in ["Resolver", "ResolvedToken", "LoadInfo", "load_info", "compat", "LinearOAuthError"]:
        assert name in lo.__all__
    assert lo.Resolver.__module__ == "linear_oauth"
    assert lo.ResolvedToken.__module__ == "linear_oauth"
    with pytest.raises(TypeError):
        lo.ResolvedToken()  # only the resolver makes tokens


def test_package_ships_types() -> None:
    pkg = Path(lo.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_native.pyi").is_file()


def test_precompiled_component_was_used() -> None:
    info = lo.load_info()
    assert info.compiled_fallback is False
    assert 0 <= info.load_time_s < 5
    assert "compiled_fallback=False" in repr(info)


def test_import_and_construct_stay_light() -> None:
    """No wasm compile, no `logging`/`asyncio` import until something needs them."""
    code = (
        "import sys, linear_oauth as lo\n"
        "r = lo.Resolver(store='memory:')\n"
        "print(sorted(m for m in ('logging', 'asyncio', 'linear_oauth.compat') if m in sys.modules))\n"
        "print(lo.load_info().compiled_fallback)\n"
        "lo.compat\n"
        "print('linear_oauth.compat' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAR_OAUTH_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split("\n")[:3] == ["[]", "False", "True"]


@pytest.mark.parametrize("value", [1e300, float("nan"), float("inf"), -1.0, 0.0])
def test_out_of_range_seconds_are_invalid_input_not_a_panic(tmp_path: Path, value: float) -> None:
    with pytest.raises(lo.InvalidInput, match="http_timeout_s"):
        lo.Resolver(store=f"file:{tmp_path}", http_timeout_s=value)


def test_out_of_range_environment_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAR_OAUTH_HTTP_TIMEOUT_S", "1e20")
    with pytest.raises(lo.InvalidInput, match="LINEAR_OAUTH_HTTP_TIMEOUT_S"):
        lo.Resolver.from_env()
