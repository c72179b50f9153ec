# Stub manifest of the Odoo test double's core module "bus" (no code, no views).
{  # noqa: B018 (an Odoo manifest is a bare dict)
    "name": "IM Bus",
    "version": "1.0",
    "depends": ["base", "web"],
    "auto_install": True,
    "license": "LGPL-3",
}
