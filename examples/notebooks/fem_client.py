"""A small client of the FEM orchestrator for notebooks: GraphQL over HTTP (requests) and live
subscriptions over WebSocket (websockets, protocol graphql-transport-ws). Only packages Debian
ships: python3-requests and python3-websockets.

    client = FemClient.from_env()          # FEM_URL (default http://127.0.0.1:4000/graphql), FEM_TOKEN
    workflow = client.submit({"tasks": [...]})
    await client.follow(workflow["id"], on_line=print_line)   # live log lines until it has ended
"""

import asyncio
import itertools
import json
import os

import requests
import websockets

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"}

GRAPH = """query($id: ID!) { workflow(id: $id) { id name state tasks { id key state
  runs { id attempt state message logLineCount result node { id } } } } }"""
SUBMIT = """mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { id name state
  tasks { id key state runs { id attempt state message logLineCount result node { id } } } } }"""
TASK_LOGS = """subscription($taskId: ID!) { taskLogs(taskId: $taskId) { runId lines { seq stream text } } }"""
WORKFLOW_EVENTS = """subscription($workflowId: ID!) { workflowEvents(workflowId: $workflowId) { kind state } }"""


class FemError(Exception):
    """An error the orchestrator answered with: its code (extensions.code) and message."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class FemClient:
    def __init__(self, url, token=None, timeout_s=60):
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    @classmethod
    def from_env(cls):
        return cls(os.environ.get("FEM_URL", "http://127.0.0.1:4000/graphql"), os.environ.get("FEM_TOKEN"))

    def _auth(self):
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def graphql(self, query, variables=None):
        """One query or mutation over HTTP; returns its data or raises FemError."""
        # The server refuses other content types as possible cross-site request forgery.
        response = requests.post(self.url, json={"query": query, "variables": variables or {}},
                                 headers={"content-type": "application/json", **self._auth()}, timeout=self.timeout_s)
        answer = response.json()
        if answer.get("errors"):
            first = answer["errors"][0]
            raise FemError(first.get("extensions", {}).get("code", "ERROR"), first["message"])
        return answer["data"]

    def submit(self, workflow):
        return self.graphql(SUBMIT, {"input": workflow})["submitWorkflow"]

    def workflow(self, workflow_id):
        return self.graphql(GRAPH, {"id": workflow_id})["workflow"]

    async def follow(self, workflow_id, on_line, quiet_s=1.0, timeout_s=300):
        """Calls on_line(node_id, line) for every log line of every run of the workflow, stored ones
        first and then live, each once and in order per run; returns the finished workflow once it
        has ended and every line was delivered. Raises FemError, or TimeoutError after timeout_s."""
        graph = self.workflow(workflow_id)
        last_seq = {}
        nodes = {}

        def learn(g):
            for task in g["tasks"]:
                for run in task["runs"]:
                    nodes[run["id"]] = run["node"]["id"]

        def complete(g):
            runs = [r for t in g["tasks"] for r in t["runs"]]
            return g["state"] in TERMINAL and all(last_seq.get(r["id"], 0) >= r["logLineCount"] for r in runs)

        learn(graph)
        ws_url = "ws" + self.url[len("http"):]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=self.timeout_s) as ws:
            # The token travels in connection_init; a refused one closes the socket with 4403.
            await ws.send(json.dumps({"type": "connection_init", "payload": self._auth()}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), self.timeout_s))
            if ack["type"] != "connection_ack":
                raise FemError("UNAUTHENTICATED", f"the server did not accept the connection: {ack}")
            ids = itertools.count(1)
            subscriptions = [(WORKFLOW_EVENTS, {"workflowId": workflow_id})]
            subscriptions += [(TASK_LOGS, {"taskId": task["id"]}) for task in graph["tasks"]]
            for query, variables in subscriptions:
                await ws.send(json.dumps({"id": str(next(ids)), "type": "subscribe",
                                          "payload": {"query": query, "variables": variables}}))
            next_check = loop.time() + quiet_s
            while True:
                if loop.time() >= next_check:
                    # Subscriptions deliver only what follows them: ask whether it has ended.
                    graph = await asyncio.to_thread(self.workflow, workflow_id)
                    learn(graph)
                    if complete(graph):
                        return graph
                    if loop.time() > deadline:
                        raise TimeoutError(f"workflow {workflow_id} did not end within {timeout_s} s")
                    next_check = loop.time() + quiet_s
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), max(0.05, next_check - loop.time())))
                except asyncio.TimeoutError:
                    continue
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] == "error":
                    first = message["payload"][0]
                    raise FemError(first.get("extensions", {}).get("code", "ERROR"), first["message"])
                elif message["type"] == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        first = payload["errors"][0]
                        raise FemError(first.get("extensions", {}).get("code", "ERROR"), first["message"])
                    event = payload["data"].get("workflowEvents")
                    if event is not None:
                        if event["kind"] == "WORKFLOW" and event["state"] in TERMINAL:
                            next_check = loop.time()
                        continue
                    batch = payload["data"]["taskLogs"]
                    if batch["runId"] not in nodes:
                        learn(await asyncio.to_thread(self.workflow, workflow_id))
                    for line in batch["lines"]:
                        if line["seq"] <= last_seq.get(batch["runId"], 0):
                            continue
                        last_seq[batch["runId"]] = line["seq"]
                        on_line(nodes.get(batch["runId"], "?"), line)
