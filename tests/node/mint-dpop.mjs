// Mints DPoP proofs with panva's `dpop` (an implementation independent of portcullis's
// verifier) for tests/dpop.rs. Reads one JSON command per line on stdin and answers
// each with one JSON line:
//   {"key": "ES256"}                             -> {"id": 0, "jkt": "<thumbprint>"}
//   {"proof": 0, "htu", "htm", "token", "nonce"?} -> {"proof": "<compact JWS>"}
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop'
import { createInterface } from 'node:readline'

const keys = []
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  const cmd = JSON.parse(line)
  if (cmd.key) {
    const keypair = await generateKeyPair(cmd.key, { extractable: false })
    keys.push(keypair)
    console.log(JSON.stringify({ id: keys.length - 1, jkt: await calculateThumbprint(keypair.publicKey) }))
  } else {
    const proof = await generateProof(keys[cmd.proof], cmd.htu, cmd.htm, cmd.nonce, cmd.token)
    console.log(JSON.stringify({ proof }))
  }
}
