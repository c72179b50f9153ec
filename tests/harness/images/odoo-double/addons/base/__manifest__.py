# Stub manifest of the Odoo test double's core module "base" (no code, no views).
{  # noqa: B018 (an Odoo manifest is a bare dict)
    "name": "Base",
    "version": "1.3",
    "depends": [],
    "auto_install": False,
    "license": "LGPL-3",
}
