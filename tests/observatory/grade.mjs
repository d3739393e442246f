// Grades the headers that the Portcullis module produces with the MDN HTTP
// Observatory's own tests and scoring, without any network access.
//
// The Observatory's scan() fetches a site over the network. This script runs
// the same test functions (ALL_TESTS) and the same score arithmetic on a
// Requests object built from `host-test run --json`: the page step is the
// response to an HTTPS GET, the preflight step is the response to the
// Observatory's CORS preflight. The redirection test checks the proxy's
// HTTP-to-HTTPS redirect, which Envoy does (route `https_redirect`) and the
// module does not, so the redirect chain is given as such a deployment has
// it: http://HOST/ answered 301 to https://HOST/.
//
// Usage: node grade.mjs HOST_TEST PLUGIN CONFIG_FILE LABEL
// Exits 1 when the grade is below A+.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { AxiosHeaders } from "axios";
import { CookieJar } from "tough-cookie";

import { ALL_TESTS } from "@mdn/mdn-http-observatory/src/constants.js";
import { MINIMUM_SCORE_FOR_EXTRA_CREDIT } from "@mdn/mdn-http-observatory/src/grader/charts.js";
import {
  getGradeForScore,
  getScoreModifier,
} from "@mdn/mdn-http-observatory/src/grader/grader.js";
import { parseHttpEquivHeaders } from "@mdn/mdn-http-observatory/src/retriever/utils.js";
import { Requests } from "@mdn/mdn-http-observatory/src/types.js";

const HOST = "portcullis.test";
const CORS_ORIGIN = "https://http-observatory.security.mozilla.org";
const PAGE = "<!DOCTYPE html><html><head><title>Portcullis</title></head><body><p>hello</p></body></html>";

const [hostTest, plugin, configFile, label] = process.argv.slice(2);
if (!hostTest || !plugin || !configFile) {
  console.error("usage: node grade.mjs HOST_TEST PLUGIN CONFIG_FILE [LABEL]");
  process.exit(2);
}

// A scenario whose upstream leaks its stack and sets a session cookie with no
// attributes, so the grade depends on what the module adds.
const scenario = {
  configuration: JSON.parse(fs.readFileSync(configFile, "utf8")),
  upstream: {
    status: 200,
    headers: {
      "content-type": "text/html; charset=utf-8",
      server: "nginx/1.25.3",
      "x-powered-by": "Express",
      "set-cookie": ["sessionid=3f1c2a; Path=/", "theme=dark; Path=/"],
    },
    body: PAGE,
  },
  steps: [
    {
      name: "page",
      request: { path: "/", scheme: "https", authority: HOST, headers: { accept: "text/html" } },
    },
    {
      name: "preflight",
      request: {
        method: "OPTIONS",
        path: "/",
        scheme: "https",
        authority: HOST,
        headers: { origin: CORS_ORIGIN, "access-control-request-method": "GET" },
      },
    },
  ],
};
const directory = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-observatory-"));
const scenarioFile = path.join(directory, "observatory.json");
fs.writeFileSync(scenarioFile, JSON.stringify(scenario));
const output = execFileSync(hostTest, ["run", "--json", "--plugin", plugin, scenarioFile], {
  encoding: "utf8",
});
fs.rmSync(directory, { recursive: true, force: true });
const [outcome] = JSON.parse(output);
const step = (name) => {
  const found = outcome.steps.find((candidate) => candidate.name === name);
  if (!found) {
    throw new Error(`host-test printed no step ${name}: ${output.slice(0, 2000)}`);
  }
  return found;
};

/** Builds an axios-style response from a host-test step. */
function response(found, requestHeaders) {
  const headers = new AxiosHeaders();
  const cookies = [];
  for (const [name, value] of found.response_headers) {
    if (typeof name !== "string" || typeof value !== "string" || name.startsWith(":")) {
      continue;
    }
    if (name.toLowerCase() === "set-cookie") {
      cookies.push(value);
    } else if (headers.has(name)) {
      headers.set(name, `${headers.get(name)}, ${value}`);
    } else {
      headers.set(name, value);
    }
  }
  if (cookies.length > 0) {
    headers.set("set-cookie", cookies);
  }
  return {
    headers,
    request: { headers: new AxiosHeaders(requestHeaders) },
    status: found.status,
    statusText: "",
    verified: true,
    data: typeof found.response_body === "string" ? found.response_body : "",
    config: { headers: new AxiosHeaders() },
    cookies,
  };
}

const page = response(step("page"), {});
const preflight = response(step("preflight"), { Origin: CORS_ORIGIN });

const requests = new Requests(HOST);
requests.responses.auto = page;
requests.responses.http = page;
requests.responses.https = page;
requests.responses.cors = preflight;
requests.responses.httpRedirects = [
  { url: new URL(`http://${HOST}/`), status: 301 },
  { url: new URL(`https://${HOST}/`), status: 200 },
];
requests.responses.httpsRedirects = [{ url: new URL(`https://${HOST}/`), status: 200 }];
requests.resources.path = page.data;
requests.responses.auto.httpEquiv = parseHttpEquivHeaders(page.data, `https://${HOST}/`);
const jar = new CookieJar();
for (const cookie of page.cookies) {
  jar.setCookieSync(cookie, `https://${HOST}/`);
}
requests.session = { jar, url: new URL(`https://${HOST}/`), redirectHistory: [] };

// The score arithmetic of the Observatory's scanner (src/scanner/index.js).
let scoreWithExtraCredit = 100;
let uncurvedScore = 100;
const lines = [];
for (const test of ALL_TESTS) {
  const result = test(requests);
  const modifier = result.result ? getScoreModifier(result.result) : 0;
  scoreWithExtraCredit += modifier;
  if (modifier < 0) {
    uncurvedScore += modifier;
  }
  const sign = modifier > 0 ? "+" : "";
  lines.push(`  ${result.pass ? "pass" : "FAIL"} ${result.constructor.name}: ${result.result} (${sign}${modifier})`);
}
const score =
  uncurvedScore >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? scoreWithExtraCredit : uncurvedScore;
const { grade } = getGradeForScore(score);
console.log(`observatory ${label ?? configFile}: grade ${grade}, score ${score}`);
for (const line of lines) {
  console.log(line);
}
if (grade !== "A+") {
  console.error(`observatory ${label ?? configFile}: grade ${grade} is below A+`);
  process.exit(1);
}
