"""The few words a bill says, in the account's language (en, fr, de)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "voice": {"en": "Calls", "fr": "Appels", "de": "Anrufe"},
    "sms": {"en": "SMS", "fr": "SMS", "de": "SMS"},
    "mms": {"en": "MMS", "fr": "MMS", "de": "MMS"},
    "data": {"en": "Data", "fr": "Données", "de": "Daten"},
    "supplementary": {"en": "Services", "fr": "Services", "de": "Dienste"},
    "other": {"en": "other destinations", "fr": "autres destinations", "de": "andere Ziele"},
    "monthly_fee": {"en": "Monthly fee", "fr": "Abonnement mensuel", "de": "Monatliche Grundgebühr"},
    "bundle_fee": {"en": "Bundle", "fr": "Forfait", "de": "Paket"},
    "true_up": {"en": "adjustment", "fr": "régularisation", "de": "Korrektur"},
    "in_advance": {"en": "in advance", "fr": "à échoir", "de": "im Voraus"},
    "days": {"en": "days", "fr": "jours", "de": "Tage"},
    "invoice": {"en": "Invoice", "fr": "Facture", "de": "Rechnung"},
    "credit_note": {"en": "Credit note", "fr": "Avoir", "de": "Gutschrift"},
    "period": {"en": "Period", "fr": "Période", "de": "Zeitraum"},
    "issue_date": {"en": "Issue date", "fr": "Date d'émission", "de": "Rechnungsdatum"},
    "due_date": {"en": "Due date", "fr": "Échéance", "de": "Fällig am"},
    "summary": {"en": "Summary", "fr": "Récapitulatif", "de": "Übersicht"},
    "charges": {"en": "Charges", "fr": "Détail des frais", "de": "Positionen"},
    "discounts": {"en": "Discounts", "fr": "Remises", "de": "Rabatte"},
    "taxes": {"en": "Taxes", "fr": "TVA", "de": "Steuern"},
    "bundles": {"en": "Bundle use", "fr": "Consommation des forfaits", "de": "Paketnutzung"},
    "call_detail": {"en": "Call detail", "fr": "Détail des communications", "de": "Einzelverbindungsnachweis"},
    "net_total": {"en": "Total excl. tax", "fr": "Total HT", "de": "Summe netto"},
    "tax_total": {"en": "Tax", "fr": "TVA", "de": "Steuer"},
    "gross_total": {"en": "Total incl. tax", "fr": "Total TTC", "de": "Summe brutto"},
    "prepaid": {"en": "Paid on account", "fr": "Déjà réglé", "de": "Bereits bezahlt"},
    "payable": {"en": "Amount due", "fr": "Montant à payer", "de": "Zahlbetrag"},
    "commitment": {"en": "Minimum spend", "fr": "Minimum de consommation", "de": "Mindestumsatz"},
    "one_off": {"en": "One-off charges", "fr": "Frais ponctuels", "de": "Einmalige Gebühren"},
    "usage": {"en": "Usage", "fr": "Consommations", "de": "Verbrauch"},
    "fees": {"en": "Fees", "fr": "Abonnements", "de": "Grundgebühren"},
    "account": {"en": "Account", "fr": "Compte", "de": "Kundenkonto"},
    "vat_id": {"en": "VAT id", "fr": "N° TVA", "de": "USt-IdNr."},
    "credits_invoice": {"en": "Credits invoice", "fr": "Avoir sur la facture", "de": "Gutschrift zur Rechnung"},
    "preview": {"en": "PREVIEW - not an invoice", "fr": "APERÇU - ceci n'est pas une facture", "de": "VORSCHAU - keine Rechnung"},
}


def word(key: str, language: str) -> str:
    entry = WORDS[key]
    return entry.get(language) or entry["en"]
