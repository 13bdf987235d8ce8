// Verify licensd answers and license files with WebCrypto (browsers, Deno, Node >= 20).
// Usage: node verify.mjs BASE_URL LICENSE_KEY
// (the demo fetches the public key; a real app embeds it instead)

const BEGIN = "-----BEGIN LICENSD LICENSE FILE-----";
const END = "-----END LICENSD LICENSE FILE-----";
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

export function importPublicKey(publicKeyB64) {
  return crypto.subtle.importKey("raw", b64(publicKeyB64), { name: "Ed25519" }, false, ["verify"]);
}

// Resolves to the body bytes if the answer is signed by `key` for this method, path
// (and query, exactly as requested) and status, and recent; throws otherwise.
export async function verifyResponse(key, method, path, response, maxSkewSecs = 300) {
  const header = response.headers.get("licensd-signature") ?? "";
  const fields = Object.fromEntries(header.split(",").map((part) => {
    const i = part.indexOf("=");
    return [part.slice(0, i).trim(), part.slice(i + 1).trim()];
  }));
  if (fields.alg !== "ed25519") throw new Error("unsigned answer or unknown algorithm");
  const body = new Uint8Array(await response.arrayBuffer());
  const message = [
    "licensd-response-v1", fields.ts, method.toUpperCase(), path, String(response.status),
    hex(await crypto.subtle.digest("SHA-256", body)),
  ].join("\n");
  const ok = await crypto.subtle.verify(
    { name: "Ed25519" }, key, b64(fields.sig), new TextEncoder().encode(message));
  if (!ok) throw new Error("bad signature");
  if (Math.abs(Date.now() / 1000 - Number(fields.ts)) > maxSkewSecs) throw new Error("stale signature");
  return body;
}

// Resolves to the payload of a valid, unexpired license file; throws otherwise.
export async function verifyLicenseFile(key, text, nowSecs = Date.now() / 1000) {
  const inner = text.split(BEGIN)[1].split(END)[0].replace(/\s+/g, "");
  const [payloadB64, sigB64] = inner.split(".");
  const payload = b64(payloadB64);
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, b64(sigB64), payload);
  if (!ok) throw new Error("bad signature");
  const data = JSON.parse(new TextDecoder().decode(payload));
  if (nowSecs >= data.expires_at) throw new Error("license file expired");
  return data;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [base, licenseKey] = process.argv.slice(2);
  const { public_key } = await (await fetch(`${base}/v1/signing-key`)).json();
  const key = await importPublicKey(public_key);
  const post = (path, body) => fetch(base + path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const nonce = crypto.randomUUID();
  const body = await verifyResponse(key, "POST", "/v1/licenses/validate",
    await post("/v1/licenses/validate", { key: licenseKey, nonce }));
  const answer = JSON.parse(new TextDecoder().decode(body));
  if (answer.nonce !== nonce) throw new Error("answer is not for this request");
  console.log("validate:", answer.code, "(signature ok, nonce ok)");
  const file = JSON.parse(new TextDecoder().decode(await verifyResponse(key, "POST",
    "/v1/licenses/checkout", await post("/v1/licenses/checkout", { key: licenseKey, ttl_days: 7 }))));
  const data = await verifyLicenseFile(key, file.license_file);
  console.log("license file: valid until", data.expires_at, "for", data.license.key);
}
