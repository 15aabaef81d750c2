"""Examples shown at the end of every `rulebill ... --help`, by command path.

One table, so that a reviewer sees every command's usage in one place and a test
(``tests/unit/test_cli_help.py``) can fail on a command that has none.  The numbers and ids are the sample
operator's (``plans/operator.yaml``, ``plans/billing/samples.yaml``) and the README walkthrough's.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    # server host (servers/admin.py)
    "serve": ("rulebill serve", "rulebill serve --listen 127.0.0.1:50052", "rulebill serve --migrate   # apply migrations first"),
    "db upgrade": ("rulebill db upgrade",),
    "db drop-stale-stages": ("rulebill db drop-stale-stages", "rulebill db drop-stale-stages --older-than-hours 6"),
    "bootstrap": ("rulebill bootstrap", "rulebill bootstrap --no-samples"),
    "security-officer issue": ("rulebill security-officer issue --subject carol@example.com",),
    "security-officer approve": ("RULEBILL_TOKEN=$SECOND_SO_TOKEN rulebill security-officer approve 0123456789abcdef",),
    "security-officer reject": ("RULEBILL_TOKEN=$SECOND_SO_TOKEN rulebill security-officer reject 0123456789abcdef "
                                "--reason 'no ticket for this print run'",),
    "health": ("rulebill health", "rulebill health --server 127.0.0.1:50052 --json"),
    # tenants, subscribers, tokens, audit
    "tenants list": ("rulebill tenants list", "rulebill tenants list --json"),
    "tenants show": ("rulebill tenants show mvno-alpha",),
    "tenants create": ("rulebill tenants create mvno-gamma --name 'Gamma Mobile' --currency EUR",),
    "tenants suspend": ("rulebill tenants suspend mvno-beta --reason 'unpaid invoices'",),
    "tenants reactivate": ("rulebill tenants reactivate mvno-beta",),
    "subscribers provision": ("rulebill subscribers provision --tenant mvno-alpha --msisdn +33612345678 --imsi 208150000000001 "
                              "--account ACC-1 --plan TP_ALPHA_SIMPLE",),
    "subscribers show": ("rulebill subscribers show +33699100001", "rulebill subscribers show sub_0123456789abcdef0123"),
    "subscribers list": ("rulebill subscribers list --tenant mvno-alpha", "rulebill subscribers list --status active --json"),
    "subscribers activate": ("rulebill subscribers activate SUB_ID",),
    "subscribers suspend": ("rulebill subscribers suspend SUB_ID --reason 'lost phone'",),
    "subscribers reactivate": ("rulebill subscribers reactivate SUB_ID",),
    "subscribers deactivate": ("rulebill subscribers deactivate SUB_ID --reason 'contract ended'",),
    "subscribers change-plan": ("rulebill subscribers change-plan SUB_ID --plan TP_SMART_M",),
    "subscribers swap-sim": ("rulebill subscribers swap-sim SUB_ID --imsi 208150000000002 --reason \"lost SIM\"",),
    "subscribers bar": ("rulebill subscribers bar SUB_ID --flag bar_international",),
    "subscribers unbar": ("rulebill subscribers unbar SUB_ID --flag bar_international",),
    "subscribers credit-limit": ("rulebill subscribers credit-limit SUB_ID --amount 50.00 --currency EUR",
                                 "rulebill subscribers credit-limit SUB_ID --clear"),
    "tokens issue": ("rulebill tokens issue --subject alice --tenant mvno-alpha --role csr",
                     "RULEBILL_TOKEN=$SO_TOKEN rulebill tokens issue --subject print-desk --tenant mno --role csr "
                     "--privilege voucher.reveal_pin"),
    "tokens revoke": ("rulebill tokens revoke 0123456789abcdef",),
    "tokens list": ("rulebill tokens list", "rulebill tokens list --tenant mvno-alpha --all"),
    "tokens whoami": ("rulebill tokens whoami",),
    "audit": ("rulebill audit", "rulebill audit --object-type subscriber --json"),
    # plans, rating, replay
    "plans validate": ("rulebill plans validate plans/ rules/", "rulebill plans validate plans/ --format json"),
    "plans compile": ("rulebill plans compile plans/ --out var/plans.ir.json",),
    "plans what-if": ("rulebill plans what-if --candidate plans/ --cdrs var/asterisk.cdr.csv   # against the server's active version",
                      "rulebill plans what-if --active plans/ --candidate my-plans/ --cdrs var/asterisk.cdr.csv   # offline"),
    "plans import-cgrates": ("rulebill plans import-cgrates tariffplans/tutorial --out var/imported-plans/ --currency EUR",
                             "rulebill plans import-cgrates tariffplans/tutorial --out var/imported-plans/ --tenant mvno-alpha"),
    "replay": ("rulebill replay tests/golden tests/golden/bills", "rulebill replay tests/golden --junit var/replay.xml"),
    "rating authorize": ("rulebill rating authorize --msisdn 33612345678 --to 33899123456",
                         "rulebill rating authorize --msisdn 33699100001 --to 447700900123 --roaming --visited-network DEUD2"),
    "rating alerts": ("rulebill rating alerts", "rulebill rating alerts --msisdn 33699100001 --period 2026-11"),
    "rerate": ("rulebill rerate --from 2026-11-01 --to 2026-12-01", "rulebill rerate --from 2026-11-01 --to 2026-12-01 --plan-set-version 2",
               "rulebill rerate --from 2026-11-01 --to 2026-12-01 --plan-set-version 2 --rebill 'national rate corrected'"),
    # mediation
    "mediate": ("rulebill mediate samples/asterisk/Master.csv --format asterisk --source london-pbx --out var/asterisk.cdr.csv "
                "--rejects var/asterisk.rejects.jsonl",
                "rulebill mediate samples/asterisk/Master.csv --format asterisk --source london-pbx --remote --rate --details",
                "rulebill mediate samples/tap3/roaming.ber --format tap3 --json --out var/roaming.cdr.csv --rejects var/roaming.rejects.jsonl"),
    "tap3 decode": ("rulebill tap3 decode samples/tap3/roaming.ber", "rulebill tap3 decode samples/tap3/roaming.ber --json | head"),
    # vouchers
    "vouchers generate": ("rulebill vouchers generate vp-alpha-eur-10 100", "rulebill vouchers generate vp-mno-eur-10 1000 --json"),
    "vouchers show": ("rulebill vouchers show vb-0123456789abcdef", "rulebill vouchers show --serial 1"),
    "vouchers list": ("rulebill vouchers list", "rulebill vouchers list --batch \"$BATCH\"",
                      "RULEBILL_TOKEN=$PRINT_TOKEN rulebill vouchers list --batch \"$BATCH\" --reveal --json"),
    "vouchers export": ("RULEBILL_TOKEN=$PRINT_TOKEN rulebill vouchers export --batch \"$BATCH\" --recipient-key var/printer.asc "
                        "-o var/batch.gpg",),
    "vouchers redeem": ("echo \"$PIN\" | rulebill vouchers redeem +33612345678 - --request-id r-1",),
    "vouchers reserve": ("echo \"$PIN\" | rulebill vouchers reserve +33612345678 - --request-id res-1",),
    "vouchers commit": ("rulebill vouchers commit res-1", "rulebill vouchers commit res-1 --tenant mvno-alpha"),
    "vouchers release": ("rulebill vouchers release res-1 --reason 'payment failed'",),
    "vouchers recover-reservations": ("rulebill vouchers recover-reservations", "rulebill vouchers recover-reservations --older-than 600"),
    "vouchers activate": ("rulebill vouchers activate --serials 1-100",),
    "vouchers block": ("rulebill vouchers block --serials 42 --reason 'reported lost'",),
    "vouchers unblock": ("rulebill vouchers unblock --serials 42",),
    "vouchers mark-damaged": ("rulebill vouchers mark-damaged --serials 7",),
    "vouchers mark-stolen": ("rulebill vouchers mark-stolen --serials 100-200 --reason 'shipment stolen'",),
    "vouchers recover": ("rulebill vouchers recover --serials 150-160 --reason 'found in the warehouse'",),
    "vouchers purge": ("rulebill vouchers purge --batch \"$BATCH\"",),
    "vouchers batch": ("rulebill vouchers batch activate \"$BATCH\"", "rulebill vouchers batch block \"$BATCH\" --reason audit"),
    "vouchers amend": ("rulebill vouchers amend 42 --expires 2027-12-31",),
    "vouchers expire": ("rulebill vouchers expire", "rulebill vouchers expire --batch \"$BATCH\""),
    "vouchers rotate-keys": ("rulebill vouchers rotate-keys --new-master-key",),
    "vouchers unbar": ("rulebill vouchers unbar +33612345678 --reason 'customer called'",),
    # billing
    "accounts list": ("rulebill accounts list",),
    "accounts create": ("rulebill accounts create ACC-7 --name 'Camille Roux' --street '8 quai du Rhône' --city Lyon "
                        "--postal-code 69007 --country FR --anchor-day 15 --language fr",),
    "accounts update": ("rulebill accounts update ACC-7 --email camille@example.org",),
    "accounts show": ("rulebill accounts show ACC-1001",),
    "accounts assign": ("rulebill accounts assign ACC-7 SUB_ID",),
    "accounts charge": ("rulebill accounts charge ACC-7 OC_ACTIVATION",),
    "accounts buy-add-on": ("rulebill accounts buy-add-on SUB_ID BN_ADDON_DATA_5GB --request-id shop-4711",),
    "accounts add-ons": ("rulebill accounts add-ons SUB_ID", "rulebill accounts add-ons SUB_ID --json"),
    "accounts cancel-add-on": ("rulebill accounts cancel-add-on ao_0123456789abcdef0123456789abcdef --request-id cancel-4711",),
    "bills run": ("rulebill bills run --cycle-date 2026-12-15", "rulebill bills run --now --account ACC-7 --dry-run",
                  "rulebill bills run --interim --account ACC-7"),
    "bills preview": ("rulebill bills preview ACC-1001", "rulebill bills preview ACC-1001 --html var/preview.html"),
    "bills list": ("rulebill bills list --account ACC-1001",),
    "bills show": ("rulebill bills show RT-000001",),
    "bills download": ("rulebill bills download RT-000001 --format pdf -o var/RT-000001.pdf",),
    "bills issue": ("rulebill bills issue RT-000001 RT-000002",),
    "invoices credit-note": ("rulebill invoices credit-note RT-000001 --reason goodwill --line 3=2.50",),
    "invoices rebill": ("rulebill invoices rebill RT-000001 --reason re-rated",),
    "invoices rebill-rerated": ("rulebill invoices rebill-rerated --from 2026-11-01 --to 2026-12-01 --reason 're-rated' --dry-run",),
    "invoices pay": ("rulebill invoices pay RT-000001 --amount 42.00 --reference bank-2026-12-01",),
    "invoices write-off": ("rulebill invoices write-off RT-000001 --reason 'customer insolvent'",),
    "invoices discard": ("rulebill invoices discard RT-000003 --reason 'wrong period'",),
}
