# Stub manifest of the Odoo test double's core module "web" (no code, no views).
{  # noqa: B018 (an Odoo manifest is a bare dict)
    "name": "Web",
    "version": "1.0",
    "depends": ["base"],
    "auto_install": True,
    "license": "LGPL-3",
}
