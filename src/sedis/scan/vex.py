"""OpenVEX: `not_affected` statements that suppress findings.

A statement applies to a finding when its vulnerability names one of the
finding's ids, and one of its products or subcomponents is the finding's
package (purl type, namespace and name; the version too when the statement
gives one) or is the scanned image itself (a pkg:oci purl or a digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sedis.core.errors import InvalidInputError
from sedis.scan.model import Finding

MAX_STATEMENTS = 100_000


@dataclass(frozen=True, slots=True)
class Statement:
    vulnerabilities: frozenset[str]
    products: tuple[str, ...]
    reason: str


def parse(doc: Any, where: str) -> list[Statement]:
    if not isinstance(doc, dict) or not str(doc.get("@context", "")).startswith(
        "https://openvex.dev/ns"
    ):
        raise InvalidInputError(f"{where}: not an OpenVEX document (no openvex @context)")
    items = doc.get("statements")
    if not isinstance(items, list) or len(items) > MAX_STATEMENTS:
        raise InvalidInputError(f"{where}: statements must be an array")
    out = []
    for i, st in enumerate(items):
        if not isinstance(st, dict):
            raise InvalidInputError(f"{where}: statements[{i}] must be an object")
        status = st.get("status")
        if status not in ("not_affected", "affected", "fixed", "under_investigation"):
            raise InvalidInputError(f"{where}: statements[{i}].status {status!r} is not valid")
        if status != "not_affected":
            continue
        vuln = st.get("vulnerability")
        names: set[str] = set()
        if isinstance(vuln, str):
            names.add(vuln)
        elif isinstance(vuln, dict):
            for key in ("name", "@id"):
                if isinstance(vuln.get(key), str):
                    names.add(vuln[key])
            names.update(a for a in vuln.get("aliases", ()) if isinstance(a, str))
        if not names:
            raise InvalidInputError(f"{where}: statements[{i}] names no vulnerability")
        products: list[str] = []
        for prod in [*(st.get("products") or ()), *_subcomponents(st)]:
            if isinstance(prod, str):
                products.append(prod)
            elif isinstance(prod, dict):
                ident = prod.get("@id")
                if isinstance(ident, str):
                    products.append(ident)
                ids = prod.get("identifiers")
                if isinstance(ids, dict) and isinstance(ids.get("purl"), str):
                    products.append(ids["purl"])
                products.extend(_subcomponents(prod))
        reason = st.get("justification") or st.get("impact_statement") or "not_affected"
        out.append(Statement(frozenset(names), tuple(products), str(reason)))
    return out


def _subcomponents(obj: dict[str, Any]) -> list[Any]:
    subs = obj.get("subcomponents") or []
    out: list[Any] = []
    for s in subs if isinstance(subs, list) else []:
        if isinstance(s, str):
            out.append(s)
        elif isinstance(s, dict) and isinstance(s.get("@id"), str):
            out.append(s["@id"])
    return out


def _purl_matches(product: str, package_purl: str) -> bool:
    from packageurl import PackageURL

    try:
        want = PackageURL.from_string(product)
        have = PackageURL.from_string(package_purl)
    except ValueError:
        return False
    if (want.type, want.namespace, want.name) != (have.type, have.namespace, have.name):
        return False
    return want.version is None or want.version == have.version


def _oci_digest(product: str) -> str | None:
    """The digest a pkg:oci purl names the image by (its version), if it is one."""
    if not product.startswith("pkg:oci/"):
        return None
    from packageurl import PackageURL

    try:
        return PackageURL.from_string(product).version
    except ValueError:
        return None


def applies(st: Statement, finding: Finding, image_ids: frozenset[str]) -> bool:
    if not st.vulnerabilities & set(finding.ids):
        return False
    for product in st.products:
        if product in image_ids or _oci_digest(product) in image_ids:
            return True
        if product.startswith("pkg:") and _purl_matches(product, finding.package.purl):
            return True
    return False
