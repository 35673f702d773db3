#!/usr/bin/env node
// Point the unmodified npm client `nist-randomness-beacon@2.0.4` at another base URL and let it
// fetch + verify pulses (signature over the NIST 2.0 message, and outputValue).
//
// usage: node verify.js BASE_URL [last | C/P | time:MS | ...]
//   e.g. node verify.js http://127.0.0.1:8099 last 1/1 1/54609 1/54610 time:1535651040000
// Exit 0 iff every requested pulse was fetched and the client reported it valid.
//
// The package hard-codes `const BEACON_V2_API_URI_BASE = 'https://beacon.nist.gov/beacon/2.0/'`
// (not exported), so we intercept its `require('request-promise-native')` and rewrite that prefix.
'use strict'
const Module = require('module')
const NIST = 'https://beacon.nist.gov/beacon/2.0/'
const base = (process.argv[2] || '').replace(/\/+$/, '')
if (!/^https?:\/\//.test(base)) {
  console.error('usage: verify.js BASE_URL [last | C/P | time:MS ...]')
  process.exit(2)
}
const origLoad = Module._load
Module._load = function (request, parent, isMain) {
  const real = origLoad.apply(this, arguments)
  if (request === 'request-promise-native' && parent && /nist-randomness-beacon/.test(parent.filename)) {
    return function (opts) {
      const o = Object.assign({}, opts)
      if (typeof o.uri === 'string' && o.uri.startsWith(NIST)) o.uri = base + '/beacon/2.0/' + o.uri.slice(NIST.length)
      console.log(`  client GET ${o.uri}`)
      return real(o)
    }
  }
  return real
}
const beacon = require('nist-randomness-beacon')

// Quirk: on a BAD signature the package calls an undefined `reject` (shadowed parameter in
// _nistQuery), so its promise never settles and a TypeError surfaces as an unhandled rejection.
// We turn that into a FAIL verdict for the call in flight.
let current = null
process.on('unhandledRejection', (err) => {
  if (current) current(new Error(`client rejected the pulse (internal: ${err && err.message})`))
})

function call(spec) {
  if (spec === 'last') return beacon.getMostRecentPulse()
  let m = /^(\d+)\/(\d+)$/.exec(spec)
  if (m) return beacon.getPulseByChainAndPulseIndex(+m[1], +m[2])
  m = /^time:(\d+)$/.exec(spec)
  if (m) return beacon.getClosestPulse(+m[1])
  return Promise.reject(new Error(`bad spec ${spec}`))
}

async function main() {
  const specs = process.argv.slice(3).length ? process.argv.slice(3) : ['last']
  let bad = 0
  for (const spec of specs) {
    const res = await new Promise((resolve) => {
      const timer = setTimeout(() => done(new Error('timeout (no verdict in 15 s)')), 15000)
      const done = (v) => { clearTimeout(timer); current = null; resolve(v) }
      current = done
      call(spec).then(done, (e) => done(e instanceof Error ? e : new Error(String(e))))
    })
    if (res instanceof Error) {
      bad++
      console.log(`FAIL ${spec}: ${res.message}`)
    } else {
      const p = res.pulse
      console.log(`OK   ${spec}: chain ${p.chainIndex} pulse ${p.pulseIndex} ${p.timeStamp} outputValue ${p.outputValue.slice(0, 16)}... (signature+outputValue verified by nist-randomness-beacon)`)
    }
  }
  console.log(`${specs.length - bad} passed, ${bad} failed`)
  process.exit(bad ? 1 : 0)
}
main()
