"""NVD CVE API 2.0 JSON: the CVSS vectors of each CVE, scored later by `cvss`."""

from __future__ import annotations

import re
from typing import Any

from sedis.scan.vulndb.osv import SchemaError
from sedis.scan.vulndb.records import CvssRecord

SOURCE = "nvd"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_METRICS = {"cvssMetricV40": "4.0", "cvssMetricV31": "3.1", "cvssMetricV30": "3.0"}


def looks_like_nvd(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and "vulnerabilities" in doc
        and (doc.get("format") == "NVD_CVE" or "resultsPerPage" in doc)
    )


def convert(doc: dict[str, Any]) -> list[CvssRecord]:
    items = doc.get("vulnerabilities")
    if not isinstance(items, list):
        raise SchemaError("vulnerabilities: must be an array")
    out = []
    for i, item in enumerate(items):
        cve = item.get("cve") if isinstance(item, dict) else None
        if not isinstance(cve, dict):
            raise SchemaError(f"vulnerabilities[{i}]: needs a cve object")
        cid = cve.get("id")
        if not isinstance(cid, str) or not _CVE.match(cid):
            raise SchemaError(f"vulnerabilities[{i}].cve.id: {cid!r} is not a CVE id")
        metrics = cve.get("metrics", {})
        if not isinstance(metrics, dict):
            raise SchemaError(f"{cid}: metrics must be an object")
        vectors = []
        for key, version in _METRICS.items():
            entries = metrics.get(key, [])
            if not isinstance(entries, list):
                raise SchemaError(f"{cid}: metrics.{key} must be an array")
            for j, m in enumerate(entries):
                data = m.get("cvssData") if isinstance(m, dict) else None
                vector = data.get("vectorString") if isinstance(data, dict) else None
                if not isinstance(vector, str) or not vector.startswith("CVSS:"):
                    raise SchemaError(f"{cid}: metrics.{key}[{j}] has no CVSS vectorString")
                vectors.append(
                    {
                        "version": version,
                        "vector": vector,
                        "type": str(m.get("type", "")),
                        "source": str(m.get("source", "")),
                    }
                )
        summary = ""
        for d in cve.get("descriptions", []) or []:
            if isinstance(d, dict) and d.get("lang") == "en" and isinstance(d.get("value"), str):
                summary = d["value"][:500]
                break
        status = cve.get("vulnStatus")
        out.append(
            CvssRecord(
                cid, {"summary": summary, "vectors": vectors, "rejected": status == "Rejected"}
            )
        )
    return out
