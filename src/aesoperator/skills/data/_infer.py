"""Which column holds what: date, amount, quantity, price, customer, product, region, order id.

A column is profiled from a sample of its values (a date in one of several formats, a number
with or without currency and thousands separators, or text), then scored by its name against
words for each role in several languages. A role whose best candidates tie is *ambiguous*: it
is an error only when a requested metric needs it, and the error names the ``column_map`` fix.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from ...errors import ValidationError
from ._spec import NEEDS, Spec

Kind = Literal["date", "integer", "decimal", "text", "empty"]
NumStyle = Literal["plain", "dot", "comma"]

# Text read as "no value" (not a bad value) in every column.
NULL_TOKENS = ["", " ", "NA", "N/A", "n/a", "na", "null", "NULL", "Null", "None", "none",
               "NaN", "nan", "-", "--", "#N/A", "nil"]  # fmt: skip
DATE_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%m-%d-%Y",
    "%d.%m.%y", "%d/%m/%y", "%m/%d/%y", "%d %b %Y", "%d-%b-%Y", "%b %d, %Y", "%d %B %Y",
    "%B %d, %Y", "%Y%m%d",
)  # fmt: skip
CURRENCY = {"$": "$", "€": "€", "£": "£", "¥": "¥", "₹": "₹", "USD": "$", "EUR": "€",
            "GBP": "£", "JPY": "¥", "CHF": "CHF", "INR": "₹"}  # fmt: skip
_CURRENCY_RE = re.compile(r"[$€£¥₹]|\b(?:USD|EUR|GBP|JPY|CHF|INR)\b")
_CODES = "USD|EUR|GBP|JPY|CHF|INR|CAD|AUD|CNY|SEK|NOK|DKK|PLN|BRL|MXN|ZAR"
MONEY_RE = (
    rf"^\s*[-+(]?\s*(?:[$€£¥₹]|{_CODES})?\s*[-+]?\s*\d[\d.,'\s\u00a0\u202f]*"
    rf"\s*(?:[$€£¥₹]|{_CODES})?\s*\)?\s*-?\s*$"
)
_MONEY = re.compile(MONEY_RE)

# Role words by language (en, de, es, fr, it, pt, nl). Exact names score 3, a word inside 2.
_EXACT: dict[str, set[str]] = {
    "date": {"date", "orderdate", "saledate", "invoicedate", "transactiondate", "datum",
             "fecha", "data", "timestamp", "datetime", "day", "createdat"},
    "amount": {"revenue", "amount", "sales", "total", "totalamount", "salesamount", "netsales",
               "sale", "turnover", "umsatz", "betrag", "importe", "monto", "ventas", "montant",
               "ca", "ricavi", "importo", "fatturato", "valor", "receita", "omzet", "bedrag",
               "linetotal", "subtotal", "grosssales", "totalprice", "value"},
    "quantity": {"quantity", "qty", "units", "unitssold", "menge", "anzahl", "cantidad",
                 "quantite", "quantita", "quantidade", "aantal", "pieces", "pcs"},
    "price": {"price", "unitprice", "preis", "precio", "prix", "prezzo", "preco", "prijs",
              "priceeach", "rate"},
    "customer": {"customer", "customerid", "client", "clientid", "buyer", "kunde", "kunden",
                 "kundennummer", "cliente", "klant", "customername", "account"},
    "product": {"product", "productid", "item", "sku", "article", "artikel", "produkt",
                "producto", "produit", "prodotto", "produto", "productname", "itemname"},
    "region": {"region", "country", "state", "territory", "market", "area", "zone", "land",
               "pais", "pays", "paese", "regione", "city", "location", "store"},
    "order_id": {"order", "orderid", "ordernumber", "orderno", "invoice", "invoiceid",
                 "invoiceno", "transaction", "transactionid", "txn", "receipt", "bestellung",
                 "bestellnummer", "auftrag", "rechnung", "pedido", "factura", "commande",
                 "facture", "ordine", "fattura", "encomenda", "bestelling", "ticket"},
}  # fmt: skip
_WORDS: dict[str, set[str]] = {
    "date": {"date", "datum", "fecha", "data", "day", "timestamp", "datetime", "time"},
    "amount": {"revenue", "amount", "sales", "sale", "total", "turnover", "umsatz", "betrag",
               "importe", "monto", "ventas", "montant", "ricavi", "importo", "fatturato",
               "valor", "receita", "omzet", "bedrag", "subtotal", "net", "gross"},
    "quantity": {"quantity", "qty", "units", "menge", "anzahl", "cantidad", "quantite",
                 "quantita", "quantidade", "aantal", "pieces", "pcs"},
    "price": {"price", "preis", "precio", "prix", "prezzo", "preco", "prijs"},
    "customer": {"customer", "client", "buyer", "kunde", "cliente", "klant", "account"},
    "product": {"product", "item", "sku", "article", "artikel", "produkt", "producto",
                "produit", "prodotto", "produto"},
    "region": {"region", "country", "state", "territory", "market", "zone", "pais", "pays",
               "paese", "regione", "city"},
    "order_id": {"order", "invoice", "transaction", "txn", "receipt", "bestellung", "auftrag",
                 "rechnung", "pedido", "factura", "commande", "facture", "ordine", "fattura"},
}  # fmt: skip
# A column empty in every sample is taken on its name alone.
_KINDS: dict[str, set[str]] = {
    "date": {"date", "empty"},
    "amount": {"integer", "decimal", "empty"},
    "quantity": {"integer", "decimal", "empty"},
    "price": {"integer", "decimal", "empty"},
    "customer": {"text", "integer", "empty"},
    "product": {"text", "integer", "empty"},
    "region": {"text", "integer", "empty"},
    "order_id": {"text", "integer", "empty"},
}
_ID_WORDS = {"id", "no", "nr", "num", "number", "code", "key", "ean", "zip", "year", "month"}
_DATE_PREFER = {"order", "sale", "sales", "invoice", "transaction", "purchase", "created"}
_DATE_AVOID = {"ship", "shipped", "shipping", "delivery", "due", "updated", "modified", "birth"}
# Claim order: a date-typed 'order_date' goes to date first; 'total_price' to amount before price.
_ORDER = ("date", "order_id", "customer", "product", "region", "quantity", "amount", "price")


@dataclass
class Profile:
    """What a sample says about one column."""

    name: str
    kind: Kind
    style: NumStyle | None = None
    date_format: str | None = None
    date_slice: bool = False  # values carry a time after the date
    date_assumed: str | None = None
    currency: str | None = None
    native: bool = False  # a typed column (Excel, Parquet, JSON), not text
    # Text columns that are mostly numbers or dates: a role named for them may still take
    # them, and the odd values become bad rows.
    mostly: Kind | None = None


@dataclass
class Mapping:
    """The columns chosen for each role, how, and what could not be decided."""

    roles: dict[str, str] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    amount_from: str = "column"  # 'column', 'price*quantity' or 'price'
    columns: list[str] = field(default_factory=list)

    @property
    def currency(self) -> str | None:
        col = self.roles.get("amount") or self.roles.get("price")
        return self.profiles[col].currency if col else None


def tokens(name: str) -> list[str]:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _score(role: str, name: str) -> float:
    toks = tokens(name)
    if not toks:
        return 0.0
    compact = "".join(toks)
    score = 0.0
    if compact in _EXACT[role]:
        score = 3.0
    elif any(t in _WORDS[role] for t in toks):
        score = 2.0
    if score and role in ("amount", "price", "quantity") and any(t in _ID_WORDS for t in toks):
        return 0.0
    if score and role == "date":
        if any(t in _DATE_PREFER for t in toks):
            score += 0.5
        if any(t in _DATE_AVOID for t in toks):
            score -= 0.5
    if (
        score
        and role in ("customer", "product", "order_id")
        and (
            any(t in {"id", "code", "number", "no", "nr", "key"} for t in toks)
            or compact.endswith("id")
        )
    ):
        score += 0.25  # ids identify; names can be shared by two customers
    return score


def _num_style(values: list[str], separator: str) -> tuple[NumStyle, float] | None:
    """The number style of a text column and the share of values that fit it."""
    plain = 0
    for v in values:
        try:
            float(v)
            plain += 1
        except ValueError:
            pass
    if plain == len(values):
        return "plain", 1.0
    fits = [v for v in values if _MONEY.match(v)]
    share = len(fits) / len(values)
    if not fits:
        return None
    if plain == len(fits):
        return "plain", share
    digits = [re.sub(r"[^\d.,]", "", v) for v in fits]
    last_sep = [re.findall(r"[.,]", d)[-1] if re.findall(r"[.,]", d) else "" for d in digits]
    both = [d for d in digits if "." in d and "," in d]
    if both:
        comma_last = sum(1 for d in both if d.rfind(",") > d.rfind("."))
        return ("comma" if comma_last * 2 > len(both) else "dot"), share
    if any(s == "," for s in last_sep):
        decimal_like = any(re.search(r",(\d{1,2}|\d{4,})$", d) for d in digits)
        if decimal_like or separator == ";":
            return "comma", share
        return "dot", share
    if any(d.count(".") > 1 for d in digits):
        return "comma", share
    return "dot", share


def _dates(values: list[str], forced: str | None) -> tuple[str, bool, str | None, float] | None:
    """(format, has time part, assumption note, share of values that fit) for dates."""
    s = pl.Series(values, dtype=pl.String)
    has_time = bool(s.str.contains(r"^\S+[ T]\d{1,2}:\d{2}").mean() or 0)
    if has_time:
        s = s.str.extract(r"^(\S+?)(?:[ T]\d{1,2}:\d{2}.*)?$", 1)
    formats = (forced,) if forced else DATE_FORMATS
    best: list[tuple[int, str]] = []
    for fmt in formats:
        if fmt == "%Y%m%d" and not forced:
            continue
        ok = len(values) - s.str.to_date(fmt, strict=False).null_count()
        if ok > 0:
            best.append((ok, fmt))
    if not best:
        return None
    top = max(n for n, _ in best)
    fits = [f for n, f in best if n == top]
    note = None
    if len(fits) > 1 and not forced:
        note = (
            f"day and month cannot be told apart in the sample; read as {fits[0]!r}, set "
            "the 'date_format' input to change it"
        )
    return fits[0], has_time, note, top / len(values)


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def profile(df: pl.DataFrame, separator: str, date_format: str | None) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for name in df.columns:
        col = df.get_column(name)
        dtype = col.dtype
        if dtype.is_temporal():
            out[name] = Profile(name, "date", native=True)
            continue
        if dtype.is_integer():
            out[name] = Profile(name, "integer", style="plain", native=True)
            continue
        if dtype.is_float() or dtype.is_decimal():
            out[name] = Profile(name, "decimal", style="plain", native=True)
            continue
        if dtype != pl.String:
            out[name] = Profile(name, "text", native=True)
            continue
        values = [v.strip() for v in col.drop_nulls().to_list() if v.strip() not in NULL_TOKENS]
        if not values:
            out[name] = Profile(name, "empty")
            continue
        dated = _dates(values, date_format)
        if dated is not None and dated[3] >= 0.9:
            fmt, has_time, note, _ = dated
            out[name] = Profile(
                name, "date", date_format=fmt, date_slice=has_time, date_assumed=note
            )
            continue
        style = _num_style(values, separator)
        if style is not None and style[1] >= 0.5:
            fitting = [v for v in values if _MONEY.match(v) or _is_float(v)]
            kind: Kind = (
                "integer" if all(re.fullmatch(r"[-+]?\d+", v) for v in fitting) else "decimal"
            )
            found = [_CURRENCY_RE.search(v) for v in values[:200]]
            symbols = [m.group(0) for m in found if m]
            currency = CURRENCY.get(max(set(symbols), key=symbols.count)) if symbols else None
            p = Profile(name, kind, style=style[0], currency=currency)
            if style[1] < 0.9:
                p.kind, p.mostly = "text", kind
            out[name] = p
            continue
        if dated is not None and dated[3] >= 0.5:
            fmt, has_time, note, _ = dated
            out[name] = Profile(name, "text", date_format=fmt, date_slice=has_time,
                                date_assumed=note, mostly="date")  # fmt: skip
            continue
        out[name] = Profile(name, "text")
    return out


def infer(samples: list[tuple[str, pl.DataFrame, str]], spec: Spec) -> Mapping:
    """Choose a column per role from ``(label, sample, separator)`` of every file."""
    first_label, first, sep = samples[0]
    common = [c for c in first.columns if all(c in df.columns for _, df, _ in samples[1:])]
    # Profile every file's sample together, so one file's odd dates are seen too.
    frames = [df.select(common) for _, df, _ in samples]
    if all(f.schema == frames[0].schema for f in frames):
        merged = pl.concat(frames, how="vertical")
    else:
        merged = pl.concat([f.select(pl.all().cast(pl.String)) for f in frames], how="vertical")
    m = Mapping(profiles=profile(merged, sep, spec.date_format), columns=common)
    claimed: set[str] = set()
    for role, col in spec.column_map.items():
        for label, df, _ in samples:
            if col not in df.columns:
                close = [c for c in df.columns if c.lower() == col.lower()]
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValidationError(
                    f"inputs.column_map.{role}: column {col!r} is not in {label!r}{hint}; "
                    f"its columns are {', '.join(map(repr, df.columns))}"
                )
        m.roles[role] = col
        m.how[role] = "column_map"
        claimed.add(col)
    for role in _ORDER:
        if role in m.roles:
            continue
        scored = []
        for name in common:
            p = m.profiles[name]
            if name in claimed:
                continue
            s = _score(role, name)
            if p.kind not in _KINDS[role] and not (s >= 2 and p.mostly in _KINDS[role]):
                continue
            if s == 0 and role == "date" and p.kind == "date":
                s = 1.0  # a column of dates is a date column whatever its name
            if s > 0:
                scored.append((s, name))
        if not scored:
            continue
        top = max(s for s, _ in scored)
        best = [n for s, n in scored if s == top]
        if len(best) > 1:
            m.ambiguous[role] = best
            continue
        m.roles[role] = best[0]
        m.how[role] = "type" if top == 1.0 else "name"
        claimed.add(best[0])
    if "amount" not in m.roles and "amount" not in m.ambiguous and "price" in m.roles:
        m.amount_from = "price*quantity" if "quantity" in m.roles else "price"
    for role, col in m.roles.items():
        prof = m.profiles.get(col)
        if (
            role == "date"
            and prof
            and not prof.native
            and prof.kind != "empty"
            and "date" not in (prof.kind, prof.mostly)
        ):
            raise ValidationError(
                f"inputs.column_map.date: column {col!r} does not hold dates in a known format; "
                "name the format with the 'date_format' input, e.g. '%d/%m/%Y'"
            )
        numeric = {"integer", "decimal", "empty"}
        if (
            role in ("amount", "quantity", "price")
            and prof
            and not {prof.kind, prof.mostly} & numeric
        ):
            raise ValidationError(
                f"inputs.column_map.{role}: column {col!r} does not hold numbers "
                f"(sample values of {first_label!r} are text); map a numeric column"
            )
    return m


def needed_roles(spec: Spec, mapping: Mapping) -> dict[str, list[str]]:
    """Role -> the metrics (or inputs) that need it. Amount is always needed."""
    need: dict[str, list[str]] = {"amount": ["revenue"]}
    for metric in spec.metrics:
        for role in NEEDS.get(metric, ()):
            need.setdefault(role, []).append(metric)
    if spec.period in ("day", "week", "month", "quarter", "year"):
        need.setdefault("date", []).append(f"period={spec.period}")
    return need


def check(spec: Spec, mapping: Mapping, label: str) -> list[str]:
    """Raise when a needed role is missing or ambiguous; return the metrics left out.

    Metrics (and a period) the caller asked for must be computable. Default metrics whose
    column is missing or ambiguous are left out and reported instead.
    """
    dropped: list[str] = []
    for role, users in needed_roles(spec, mapping).items():
        if role in mapping.roles or (role == "amount" and mapping.amount_from != "column"):
            continue
        asked = [
            u
            for u in users
            if role == "amount"
            or (spec.explicit_period if u.startswith("period") else spec.explicit_metrics)
        ]
        if not asked:
            dropped.extend(u for u in users if not u.startswith("period"))
            continue
        what = ", ".join(repr(u) for u in asked)
        if role in mapping.ambiguous:
            cands = mapping.ambiguous[role]
            fix = json.dumps({"column_map": {role: cands[0]}})
            raise ValidationError(
                f"inputs.column_map.{role}: {what} needs the {role} column and "
                f"{len(cands)} columns of {label!r} fit equally well: "
                f"{', '.join(map(repr, cands))}; choose one with {fix[1:-1]}"
            )
        fix = json.dumps({"column_map": {role: "<column>"}})
        extra = " (or map 'price' and 'quantity' to compute it)" if role == "amount" else ""
        raise ValidationError(
            f"inputs.column_map.{role}: {what} needs a {role} column and none of the columns "
            f"of {label!r} ({', '.join(map(repr, mapping.columns))}) looks like one; "
            f"name it with {fix[1:-1]}{extra}"
        )
    return dropped
