"""The replaced service's callers are Python programs using `requests`: this is one of them.

Each test calls a running `pexip-sdk dev` the way such a caller does (what `requests` sends by
default: `False` for a boolean, no Content-Type for `data=`) and checks what the FastAPI
service answered it: the host PIN on reads, Pydantic's booleans, FastAPI's 422 body, JSON
without Content-Type, trailing slashes, X-Process-Time, and the agent leg of `dev`.

Run by scripts/wire-compat (from scripts/test) with PEXIP_SDK_URL and PEXIP_SDK_AGENT_TOKEN.
"""

import json
import os
import unittest

import requests

BASE = os.environ["PEXIP_SDK_URL"].rstrip("/")
AGENT_TOKEN = os.environ["PEXIP_SDK_AGENT_TOKEN"]
# hex("id&MTIzNDU2LDc2NTQzMg"), the documented example, and a second call of the same host.
UUI = "6964264d54497a4e4455324c4463324e54517a4d67;encoding=hex"
OTHER_UUI = "6964264f5448567964474e68624777;encoding=hex"
TIMEOUT = 30


def create(uui=UUI):
    response = requests.post(f"{BASE}/room/create", params={"uuiData": uui}, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


class Reads(unittest.TestCase):
    def test_reads_carry_the_host_pin_and_create_does_not(self):
        room = create()
        self.assertNotIn("pin", room)
        read = requests.get(f"{BASE}/room/{room['name']}", timeout=TIMEOUT).json()
        self.assertRegex(read["pin"], r"^[0-9]{6}$")
        self.assertEqual(read["guest_pin"], room["guest_pin"])
        listed = requests.get(f"{BASE}/room", timeout=TIMEOUT).json()
        self.assertTrue(listed)
        self.assertTrue(all(isinstance(item["pin"], str) for item in listed))

    def test_booleans_as_python_writes_them(self):
        name = create()["name"]
        for value, full in [(False, True), (True, False), ("no", True), ("OFF", True),
                            ("0", True), ("yes", False), ("t", False)]:
            with self.subTest(value=value):
                response = requests.get(f"{BASE}/room/{name}",
                                        params={"constrained_attributes": value},
                                        timeout=TIMEOUT)
                self.assertEqual(response.status_code, 200)
                self.assertEqual("resource_uri" in response.json(), full)

    def test_dev_rooms_link_the_contact_centre_agent(self):
        name = create(OTHER_UUI)["name"]
        full = requests.get(f"{BASE}/room/{name}", params={"constrained_attributes": False},
                            timeout=TIMEOUT).json()
        agents = full["automatic_participants"]
        self.assertEqual([a["alias"] for a in agents], ["sip:agent@contact-centre.dev"])
        self.assertEqual(agents[0]["role"], "chair")


class Validation(unittest.TestCase):
    def assert_fastapi_422(self, response, loc, kind):
        self.assertEqual(response.status_code, 422, response.text)
        body = response.json()
        self.assertEqual(body["code"], "validation_error")
        self.assertIsInstance(body["detail"], list)
        item = body["detail"][0]
        self.assertEqual(item["loc"], loc)
        self.assertEqual(item["type"], kind)
        self.assertIsInstance(item["msg"], str)
        self.assertIn("input", item)
        return item

    def test_a_missing_query_parameter(self):
        response = requests.post(f"{BASE}/room/create", timeout=TIMEOUT)
        item = self.assert_fastapi_422(response, ["query", "uuiData"], "missing")
        self.assertEqual(item["msg"], "Field required")
        self.assertIsNone(item["input"])

    def test_an_ill_typed_query_parameter(self):
        response = requests.post(f"{BASE}/room/bulk", params={"count": "ten"}, timeout=TIMEOUT)
        item = self.assert_fastapi_422(response, ["query", "count"], "int_parsing")
        self.assertEqual(item["input"], "ten")
        response = requests.get(f"{BASE}/room", params={"constrained_attributes": "maybe"},
                                timeout=TIMEOUT)
        self.assert_fastapi_422(response, ["query", "constrained_attributes"], "bool_parsing")

    def test_a_body_that_is_not_json(self):
        name = create()["name"]
        response = requests.patch(f"{BASE}/room/{name}", data='{"description": ',
                                  headers={"Content-Type": "application/json"},
                                  timeout=TIMEOUT)
        item = self.assert_fastapi_422(response, ["body", 16], "json_invalid")
        self.assertEqual(item["msg"], "JSON decode error")

    def test_errors_the_handler_raises_keep_a_text_detail(self):
        response = requests.post(f"{BASE}/room/create", params={"uuiData": "zz"},
                                 timeout=TIMEOUT)
        self.assertEqual(response.status_code, 400)
        self.assertIsInstance(response.json()["detail"], str)
        self.assertEqual(response.json()["code"], "invalid_uui_data")
        response = requests.get(f"{BASE}/room/vbv-nosuchroom", timeout=TIMEOUT)
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["detail"], "room not found")


class Transport(unittest.TestCase):
    def test_a_json_body_without_content_type(self):
        name = create()["name"]
        request = requests.Request("PATCH", f"{BASE}/room/{name}",
                                   data=json.dumps({"description": "no content type"}))
        prepared = request.prepare()
        self.assertNotIn("Content-Type", prepared.headers)
        with requests.Session() as session:
            response = session.send(prepared, timeout=TIMEOUT)
        self.assertEqual(response.status_code, 202, response.text)
        full = requests.get(f"{BASE}/room/{name}", params={"constrained_attributes": False},
                            timeout=TIMEOUT).json()
        self.assertEqual(full["description"], "no content type")

    def test_a_trailing_slash_reaches_the_same_route(self):
        room = requests.post(f"{BASE}/room/create/", params={"uuiData": UUI},
                             timeout=TIMEOUT, allow_redirects=False)
        self.assertEqual(room.status_code, 200)
        name = room.json()["name"]
        with_slash = requests.get(f"{BASE}/room/{name}/", timeout=TIMEOUT,
                                  allow_redirects=False)
        self.assertEqual(with_slash.status_code, 200)
        self.assertEqual(with_slash.json(),
                         requests.get(f"{BASE}/room/{name}", timeout=TIMEOUT).json())
        health = requests.get(f"{BASE}/public/health/", timeout=TIMEOUT, allow_redirects=False)
        self.assertEqual(health.status_code, 200)

    def test_every_response_carries_x_process_time(self):
        responses = [
            requests.get(f"{BASE}/public/health", timeout=TIMEOUT),
            requests.get(f"{BASE}/room", timeout=TIMEOUT),
            requests.post(f"{BASE}/room/create", timeout=TIMEOUT),
            requests.get(f"{BASE}/nope", timeout=TIMEOUT),
            requests.get(f"{BASE}/public/room/vbv-nosuchroom",
                         headers={"x-auth-token": AGENT_TOKEN}, timeout=TIMEOUT),
            requests.post(f"{BASE}/public/event_sink", json={}, timeout=TIMEOUT),
        ]
        for response in responses:
            with self.subTest(url=response.url, status=response.status_code):
                seconds = float(response.headers["X-Process-Time"])
                self.assertGreaterEqual(seconds, 0.0)
                self.assertLess(seconds, 60.0)


if __name__ == "__main__":
    unittest.main()
