# Stub manifest of the Odoo test double's core module "mail" (no code, no views).
{  # noqa: B018 (an Odoo manifest is a bare dict)
    "name": "Discuss",
    "version": "1.15",
    "depends": ["base", "bus", "web"],
    "auto_install": False,
    "license": "LGPL-3",
}
