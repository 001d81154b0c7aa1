/*
 * C reference for bench/datapath.ts: the per-packet work of poptop's data path, without syscalls.
 *
 *   receive: enhanced GRE header parse and checks (RFC 2637 §4.1), sequence/ack bookkeeping and an
 *            ack-only header every 32 packets, PPP frame header, MPPE-128 stateless decrypt (RFC
 *            3078: header checks, coherency count, one key change per packet = SHA-1
 *            GetNewKeyFromSHA + RC4 of the interim key + RC4 re-key, then RC4 over the body),
 *            inner protocol check.
 *   send:    PPP + MPPE headers written in front of a 1400-octet IP packet (read into a slot with
 *            32 octets of headroom), stateless key change, RC4 in place, GRE header in front.
 *
 * SHA-1 and RC4 are written here, plainly, so that both sides do the same arithmetic.
 * Usage: datapath verify   prints the first packets of each direction in hex
 *        datapath serve    reads "CASE MS MAX" lines (CASE: send, recv, mppe) and runs that case
 *                          for MS milliseconds (at most MAX packets), printing "CASE n wall_us
 *                          cpu_us" per packet; each case's state carries on to its next command
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PACKET 1400
#define HEADROOM 32
#define RING 1024
#define CALL_ID_PEER 0x1234
#define CALL_ID_OURS 0x0042
#define WINDOW 64
#define ACK_AT_ONCE 32
#define MAX_SEQ_JUMP 1024

/* ---- SHA-1 (FIPS 180-4), for the 112-octet key-change input ---- */
#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
  for (int t = 16; t < 80; t++) w[t] = ROL(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
    else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
    else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
    else { f = b ^ c ^ d; k = 0xca62c1d6; }
    uint32_t tmp = ROL(a, 5) + f + e + w[t] + k;
    e = d; d = c; c = ROL(b, 30); b = a; a = tmp;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void sha1(const uint8_t *data, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  size_t full = len & ~(size_t)63;
  for (size_t off = 0; off < full; off += 64) sha1_block(h, data + off);
  uint8_t tail[128];
  size_t rest = len - full, tlen = rest + 9 <= 64 ? 64 : 128;
  memset(tail, 0, tlen);
  memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < tlen; off += 64) sha1_block(h, tail + off);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = h[i] >> 24; out[4 * i + 1] = h[i] >> 16; out[4 * i + 2] = h[i] >> 8; out[4 * i + 3] = h[i];
  }
}

/* ---- RC4 ---- */
typedef struct { uint8_t s[256]; uint8_t i, j; } rc4_t;

static void rc4_key(rc4_t *r, const uint8_t *key, int n) {
  for (int k = 0; k < 256; k++) r->s[k] = (uint8_t)k;
  uint8_t j = 0;
  for (int k = 0; k < 256; k++) {
    uint8_t t = r->s[k];
    j = (uint8_t)(j + t + key[k % n]);
    r->s[k] = r->s[j];
    r->s[j] = t;
  }
  r->i = r->j = 0;
}

static void rc4_run(rc4_t *r, const uint8_t *in, uint8_t *out, size_t len) {
  uint8_t i = r->i, j = r->j, *s = r->s;
  for (size_t k = 0; k < len; k++) {
    i++;
    uint8_t si = s[i];
    j = (uint8_t)(j + si);
    uint8_t sj = s[j];
    s[i] = sj;
    s[j] = si;
    out[k] = in[k] ^ s[(uint8_t)(si + sj)];
  }
  r->i = i; r->j = j;
}

/* ---- MPPE-128 stateless (RFC 3078 §7.3, §8.1; keys as src/ppp/mppe/keys.ts) ---- */
typedef struct {
  uint8_t shain[16 + 40 + 16 + 40]; /* StartKey ‖ SHApad1 ‖ SessionKey ‖ SHApad2 */
  uint8_t session[16];
  rc4_t rc4, scratch;
  unsigned ccount;
} mppe_t;

static void mppe_init(mppe_t *m, const uint8_t start[16], unsigned ccount) {
  memcpy(m->shain, start, 16);
  memset(m->shain + 16, 0x00, 40);
  memcpy(m->shain + 56, start, 16);
  memset(m->shain + 72, 0xf2, 40);
  uint8_t d[20];
  sha1(m->shain, sizeof m->shain, d); /* initial key: GetNewKeyFromSHA(start, start), no RC4 */
  memcpy(m->session, d, 16);
  rc4_key(&m->rc4, m->session, 16);
  m->ccount = ccount;
}

static void mppe_change(mppe_t *m) {
  uint8_t d[20];
  memcpy(m->shain + 56, m->session, 16);
  sha1(m->shain, sizeof m->shain, d);
  rc4_key(&m->scratch, d, 16);
  rc4_run(&m->scratch, d, m->session, 16);
  rc4_key(&m->rc4, m->session, 16);
}

/* Header at out[0..1], then body (plain may be out + 2). */
static void mppe_encrypt(mppe_t *m, const uint8_t *plain, uint8_t *out, size_t len) {
  unsigned cc = m->ccount;
  mppe_change(m);
  out[0] = (uint8_t)(0x80 | 0x10 | (cc >> 8));
  out[1] = (uint8_t)cc;
  rc4_run(&m->rc4, plain, out + 2, len);
  m->ccount = (cc + 1) & 0xfff;
}

/* Returns the plaintext length (decrypted in place after the header) or -1. */
static long mppe_decrypt(mppe_t *m, uint8_t *p, size_t len) {
  if (len <= 2 || !(p[0] & 0x10) || (p[0] & 0x60) || !(p[0] & 0x80)) return -1;
  unsigned cc = (unsigned)(p[0] & 0x0f) << 8 | p[1];
  unsigned advance = (cc - m->ccount) & 0xfff;
  if (advance == 0 || advance > 16) return -1; /* the bench never needs the credit path */
  for (unsigned k = 0; k < advance; k++) mppe_change(m);
  m->ccount = cc;
  rc4_run(&m->rc4, p + 2, p + 2, len - 2);
  return (long)(len - 2);
}

/* ---- enhanced GRE (RFC 2637 §4.1) ---- */
typedef struct { unsigned call_id, payload_len, hlen; int has_seq, has_ack; uint32_t seq, ack; } gre_hdr_t;

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static int gre_read(const uint8_t *p, size_t avail, gre_hdr_t *h) {
  if (avail < 8) return -1;
  unsigned flags = (unsigned)p[0] << 8 | p[1];
  if (flags & (0x8000 | 0x4000 | 0x0800 | 0x0700)) return -1;
  if (!(flags & 0x2000) || (flags & 7) != 1) return -1;
  if (((unsigned)p[2] << 8 | p[3]) != 0x880b) return -1;
  h->has_seq = (flags & 0x1000) != 0;
  h->has_ack = (flags & 0x0080) != 0;
  h->hlen = 8 + (h->has_seq ? 4 : 0) + (h->has_ack ? 4 : 0);
  if (avail < h->hlen) return -1;
  h->payload_len = (unsigned)p[4] << 8 | p[5];
  if (h->payload_len > avail - h->hlen) return -1;
  h->call_id = (unsigned)p[6] << 8 | p[7];
  const uint8_t *at = p + 8;
  if (h->has_seq) { h->seq = get32(at); at += 4; }
  if (h->has_ack) h->ack = get32(at);
  return 0;
}

static unsigned gre_write(uint8_t *p, unsigned call_id, unsigned payload_len, int has_seq, uint32_t seq,
                          int has_ack, uint32_t ack) {
  unsigned flags = 0x2000 | 1 | (has_seq ? 0x1000 : 0) | (has_ack ? 0x0080 : 0);
  p[0] = flags >> 8; p[1] = (uint8_t)flags; p[2] = 0x88; p[3] = 0x0b;
  p[4] = payload_len >> 8; p[5] = (uint8_t)payload_len; p[6] = call_id >> 8; p[7] = (uint8_t)call_id;
  unsigned at = 8;
  if (has_seq) { put32(p + at, seq); at += 4; }
  if (has_ack) { put32(p + at, ack); at += 4; }
  return at;
}

/* One call's channel state (the bookkeeping GreChannel does per packet, minus timers). */
typedef struct {
  uint32_t next_seq, peer_acked, expected;
  unsigned rx_unacked;
  int synced;
  uint8_t ack_only[12];
  unsigned long sent, delivered, acks_out, dropped;
} chan_t;

static void chan_ack_in(chan_t *c, uint32_t ack) {
  uint32_t last = c->next_seq - 1;
  if ((int32_t)(ack - last) > 0) { c->dropped++; return; }
  if ((int32_t)(ack - c->peer_acked) > 0) c->peer_acked = ack;
}

/* ---- the two directions ---- */
static const uint8_t SEND_START[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t RECV_START[16] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
                                       0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f};

/* The IP packet number i (the same pattern as bench/datapath.ts). */
static void ip_packet(uint8_t *p, unsigned i) {
  for (unsigned k = 0; k < PACKET; k++) p[k] = (uint8_t)(k * 7 + i * 13);
  p[0] = 0x45;
}

/* Send one IP packet at slot + HEADROOM; returns the GRE packet start and its length. */
static uint8_t *send_one(chan_t *c, mppe_t *m, uint8_t *slot, size_t *len) {
  uint8_t *ip = slot + HEADROOM;
  uint8_t *ppp = ip - 8; /* FF 03 00 FD | MPPE header (2) | 00 21 */
  ppp[0] = 0xff; ppp[1] = 0x03; ppp[2] = 0x00; ppp[3] = 0xfd;
  ppp[6] = 0x00; ppp[7] = 0x21;
  mppe_encrypt(m, ppp + 6, ppp + 4, PACKET + 2);
  unsigned frame_len = PACKET + 8;
  if ((uint32_t)(c->next_seq - 1 - c->peer_acked) >= WINDOW) { c->dropped++; *len = 0; return NULL; }
  int has_ack = c->rx_unacked > 0;
  uint32_t ack = c->expected - 1;
  if (has_ack) c->rx_unacked = 0;
  unsigned hlen = 12 + (has_ack ? 4 : 0);
  uint8_t *gre = ppp - hlen;
  gre_write(gre, CALL_ID_PEER, frame_len, 1, c->next_seq++, has_ack, ack);
  c->sent++;
  *len = hlen + frame_len;
  return gre;
}

/* Receive one GRE packet; returns the IP payload length delivered, or -1. */
static long recv_one(chan_t *c, mppe_t *m, uint8_t *pkt, size_t avail, uint8_t **ip) {
  gre_hdr_t h = {0};
  if (gre_read(pkt, avail, &h) != 0 || h.call_id != CALL_ID_OURS) { c->dropped++; return -1; }
  if (!h.has_seq) { if (h.has_ack) chan_ack_in(c, h.ack); return -1; }
  if (!c->synced) { c->synced = 1; c->expected = h.seq; }
  int32_t d = (int32_t)(h.seq - c->expected);
  if (d > MAX_SEQ_JUMP || d < -MAX_SEQ_JUMP) { c->dropped++; return -1; }
  if (h.has_ack) chan_ack_in(c, h.ack);
  if (d != 0) { c->dropped++; return -1; } /* the bench sends in order: no reorder buffer */
  c->expected++;
  c->delivered++;
  long out = -1;
  uint8_t *f = pkt + h.hlen;
  size_t flen = h.payload_len, pos = 0;
  if (flen >= 2 && f[0] == 0xff && f[1] == 0x03) pos = 2;
  unsigned proto = 0;
  if (pos < flen && (f[pos] & 1)) proto = f[pos++];
  else if (pos + 1 < flen) { proto = (unsigned)f[pos] << 8 | f[pos + 1]; pos += 2; }
  if (proto == 0xfd) {
    long n = mppe_decrypt(m, f + pos, flen - pos);
    if (n >= 2) {
      uint8_t *pl = f + pos + 2;
      int shortp = pl[0] & 1;
      unsigned inner = shortp ? pl[0] : (unsigned)pl[0] << 8 | pl[1];
      if (inner == 0x21) { *ip = pl + (shortp ? 1 : 2); out = n - (shortp ? 1 : 2); }
    }
  }
  if (out < 0) c->dropped++;
  if (++c->rx_unacked >= ACK_AT_ONCE) {
    c->rx_unacked = 0;
    gre_write(c->ack_only, CALL_ID_PEER, 0, 0, 0, 1, c->expected - 1);
    c->acks_out++;
  }
  return out;
}

/* The ring of packets the peer sends us: GRE S+A + FF03 00FD + MPPE(00 21 + IP), seq rewritten later. */
static uint8_t ring[RING][16 + 8 + PACKET];
static size_t ring_len;

static void build_ring(void) {
  mppe_t peer;
  mppe_init(&peer, RECV_START, 0);
  uint8_t plain[2 + PACKET];
  for (unsigned i = 0; i < RING; i++) {
    uint8_t *p = ring[i];
    gre_write(p, CALL_ID_OURS, PACKET + 8, 1, i, 1, 0xffffffffu);
    p[16] = 0xff; p[17] = 0x03; p[18] = 0x00; p[19] = 0xfd;
    plain[0] = 0x00; plain[1] = 0x21;
    ip_packet(plain + 2, i);
    mppe_encrypt(&peer, plain, p + 20, PACKET + 2);
  }
  ring_len = 16 + 8 + PACKET;
}

static double now_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void hex(const char *tag, unsigned i, const uint8_t *p, size_t n) {
  printf("%s %u ", tag, i);
  for (size_t k = 0; k < n; k++) printf("%02x", p[k]);
  printf("\n");
}

static unsigned sink;
static uint8_t tmpl[PACKET];

/* Each case keeps its state from one measurement to the next, as the TS side does. */
static struct { chan_t c; mppe_t tx; uint8_t slot[HEADROOM + PACKET], ack_pkt[12]; } snd;
static struct { chan_t c; mppe_t rx; uint8_t buf[16 + 8 + PACKET]; unsigned long total; uint32_t seq; } rcv;
static struct { mppe_t tx; uint8_t plain[2 + PACKET], out[4 + PACKET]; } enc;

static void setup(void) {
  ip_packet(tmpl, 0);
  snd.c.peer_acked = 0xffffffffu;
  mppe_init(&snd.tx, SEND_START, 0);
  rcv.c.peer_acked = 0xffffffffu;
  mppe_init(&enc.tx, SEND_START, 0);
  memcpy(enc.plain + 2, tmpl, PACKET);
  enc.plain[0] = 0x00; enc.plain[1] = 0x21;
}

/* send: copy the packet into the slot (the TUN read), encrypt and frame; an ack every 32 */
static int step_send(void) {
  memcpy(snd.slot + HEADROOM, tmpl, PACKET);
  size_t len;
  uint8_t *g = send_one(&snd.c, &snd.tx, snd.slot, &len);
  if (!g) { fprintf(stderr, "send: window full (%lu drops)\n", snd.c.dropped); return -1; }
  sink ^= g[len - 1];
  if ((snd.c.sent & 31) == 0) {
    gre_write(snd.ack_pkt, CALL_ID_OURS, 0, 0, 0, 1, snd.c.next_seq - 1);
    uint8_t *ip;
    recv_one(&snd.c, &snd.tx, snd.ack_pkt, 12, &ip);
  }
  return 0;
}

/* receive: copy the next ring packet in (the socket read), sequence rewritten, then the work */
static int step_recv(void) {
  unsigned r = (unsigned)(rcv.total % RING);
  if (r == 0) mppe_init(&rcv.rx, RECV_START, 0xfff); /* the ring starts the peer's keys over */
  memcpy(rcv.buf, ring[r], ring_len);
  put32(rcv.buf + 8, rcv.seq++);
  uint8_t *ip;
  long got = recv_one(&rcv.c, &rcv.rx, rcv.buf, ring_len, &ip);
  if (got != PACKET) { fprintf(stderr, "receive: packet %lu not delivered\n", rcv.total); return -1; }
  rcv.total++;
  sink ^= ip[PACKET - 1];
  return 0;
}

/* MPPE alone: key change + RC4 over protocol + packet, into a reused buffer */
static int step_mppe(void) {
  mppe_encrypt(&enc.tx, enc.plain, enc.out, PACKET + 2);
  sink ^= enc.out[PACKET + 1];
  return 0;
}

/* Runs `step` in batches of 256 for at least `ms` (or `max` steps); prints "TAG n wall_us cpu_us". */
static int measure(const char *tag, int (*step)(void), double ms, unsigned long max) {
  unsigned long n = 0;
  double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), w = 0;
  while (n < max) {
    for (int k = 0; k < 256; k++, n++)
      if (step() != 0) return -1;
    w = now_s(CLOCK_MONOTONIC) - w0;
    if (w * 1000 >= ms) break;
  }
  double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
  printf("%s %lu %.6f %.6f\n", tag, n, w * 1e6 / n, cpu * 1e6 / n);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: datapath verify | serve\n"); return 2; }
  build_ring();
  if (strcmp(argv[1], "verify") == 0) {
    static uint8_t slot[HEADROOM + PACKET], buf[16 + 8 + PACKET];
    chan_t c = {0};
    c.peer_acked = 0xffffffffu;
    mppe_t tx, rx;
    mppe_init(&tx, SEND_START, 0);
    mppe_init(&rx, RECV_START, 0xfff);
    for (unsigned i = 0; i < 3; i++) {
      ip_packet(slot + HEADROOM, i);
      size_t len;
      uint8_t *g = send_one(&c, &tx, slot, &len);
      if (!g) return 1;
      hex("send", i, g, len);
      hex("ring", i, ring[i], ring_len);
      memcpy(buf, ring[i], ring_len);
      uint8_t *ip;
      long n = recv_one(&c, &rx, buf, ring_len, &ip);
      if (n < 0) return 1;
      hex("recv", i, ip, (size_t)n);
    }
    return 0;
  }
  if (strcmp(argv[1], "serve") != 0) { fprintf(stderr, "unknown mode %s\n", argv[1]); return 2; }
  setup();
  /* One command a line: "CASE MS MAX" (CASE send, recv or mppe); one result line each. */
  char line[128], tag[16];
  double ms;
  unsigned long max;
  while (fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%15s %lf %lu", tag, &ms, &max) != 3) { fprintf(stderr, "bad command: %s", line); return 2; }
    int (*step)(void) = strcmp(tag, "send") == 0 ? step_send : strcmp(tag, "recv") == 0 ? step_recv
                        : strcmp(tag, "mppe") == 0 ? step_mppe : NULL;
    if (!step) { fprintf(stderr, "unknown case %s\n", tag); return 2; }
    if (measure(tag, step, ms, max) != 0) return 1;
  }
  printf("sink %u\n", sink);
  return 0;
}
