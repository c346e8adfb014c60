"""The switch page and the header line in Spanish."""

from __future__ import annotations

from plugins.merchant_switch.conftest import APEX, GREENFIELD, NAMES, PINNACLE, World

SPANISH = {"Accept-Language": "es"}


async def test_the_switch_page_in_spanish(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE, APEX)
    page = await jane[GREENFIELD].client.get("/switch", headers=SPANISH)
    assert page.status_code == 200
    text = page.text
    assert '<html lang="es"' in text
    assert '<h1 class="page-title">Cambiar de comercio <span' in text
    assert "<title>Cambiar de comercio · Greenfield Bakery</title>" in text
    assert "<strong>Actual</strong> · Está aquí" in text
    # Nothing open at either sibling: each is just active.
    assert text.count('<p class="switch__summary">Activa</p>') == 2, text
    main = text.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert main.count(">Cambiar</button>") == 2  # the footer's language switch has a button of its own
    for slug in (PINNACLE, APEX):
        assert f'aria-label="Cambiar a {NAMES[slug]}"' in text  # merchant names stay as they are
    assert "Cada cambio genera un token nuevo: ninguna sesión pasa de un comercio a otro." in text
    assert "Tiene cuentas en 2 comercios más</a>" in text  # the header line
    assert "Switch merchant" not in text and "You are here" not in text and ">Active<" not in text


async def test_the_header_line_in_spanish_singular_and_no_siblings(world: World) -> None:
    pair = await world.person(GREENFIELD, APEX)
    overview = await pair[APEX].client.get("/", headers=SPANISH)
    assert "Tiene cuenta en 1 comercio más</a>" in overview.text
    alone = await world.person(GREENFIELD)
    page = await alone[GREENFIELD].client.get("/switch", headers=SPANISH)
    assert "No tiene cuentas en otros comercios a las que cambiar." in page.text
    assert "Tiene cuenta" not in page.text


async def test_a_switch_to_no_such_account_is_refused_in_spanish(world: World) -> None:
    jane = await world.person(GREENFIELD, PINNACLE)
    csrf = await jane[GREENFIELD].csrf()
    refused = await jane[GREENFIELD].client.post("/switch/mer_doesnotexist", data={"csrf_token": csrf}, headers=SPANISH)
    assert refused.status_code == 404
    assert "No existe ninguna cuenta así a la que cambiar." in refused.text
