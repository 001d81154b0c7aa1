/**
 * The text of `poptop --help` and `poptop COMMAND --help`. Every command and every flag the
 * parsers accept is named here and in man/poptop.8; test/cli/help.test.ts checks both against
 * the flag tables, so a new flag without its documentation fails the tests.
 */

export const USAGE = `poptop - PPTP VPN server and client

Usage:
  poptop serve [-c /etc/pptpd.conf] [--fg] [-d] [-l ADDR] [-o OPTIONS] [--secrets FILE] [--tun NAME]
      Run the server. Without -c: the built-in configuration (MS-CHAPv2 + MPPE-128, pool 10.77.0.10-250,
      a generated user printed once). Without --fg it detaches and logs to /var/log/poptop.log.
  poptop connect SERVER --user U --password-file F|- [--mppe 128|56|40|none] [--stateful] [--auth LIST] [-d]
      Connect to a PPTP server, bring up a TUN device with the address it assigns; Ctrl-C disconnects.
      The password: --password-file FILE, --password-file - or --password-stdin (a terminal prompts),
      or POPTOP_PASSWORD; --password P works but every local user can see it in ps.
  poptop load SERVER --user U --password-file F|- [-n SESSIONS] [-c CONCURRENCY] [--hold S] [--json]
      Load generator: many sessions from this host (no TUN each), set-up rate and failures.
  poptop sessions [--json]          List live sessions (id, user, peer, IP, auth, MPPE, uptime, traffic).
  poptop kill ID|USER|IP [--json]   End a session cleanly.
  poptop reload [--json]            Make the running server read its configuration again; sessions stay.
  poptop doctor [-c /etc/pptpd.conf] [--json]
                                    Check the host for what stops PPTP clients, each finding with its fix.
                                    Exit status 1 when something would stop clients connecting.
  poptop hash-password [PASSWORD]   Print the $NT$ form of a password for chap-secrets (reads stdin if omitted).
  poptop help [COMMAND] | version

"poptop COMMAND --help" describes every option of a command; "man 8 poptop" has the whole manual.
`;

const SERVE_HELP = `Usage: poptop serve [options]

Run the PPTP server. It reads pptpd.conf, the pppd options files and chap-secrets as pptpd and pppd do.
Without -c it runs with the built-in configuration: MS-CHAPv2 and MPPE-128 required, clients get
10.77.0.10-250, the server is 10.77.0.1, and a user "poptop" with a generated password (printed once).

Options:
  -c, --conf, --config FILE    pptpd.conf to read (default: the built-in configuration)
  -o, --option, --options FILE the pppd options file, instead of the one pptpd.conf names
  --global-options FILE|none   pppd options read first (default: /etc/ppp/options with -c, none without)
  --secrets FILE               chap-secrets (default: /etc/ppp/chap-secrets; built-in: STATE-DIR/chap-secrets)
  -l, --listen ADDR            listen on this IPv4 address only (replaces pptpd.conf's listen)
  -f, --fg, --foreground       stay in the foreground and log to stderr (for systemd and terminals)
  --logfile FILE               log file when detached (default: /var/log/poptop.log)
  -p, --pidfile FILE           pid file (replaces pptpd.conf's pidfile; default /var/run/pptpd.pid with -c)
  -d, --debug                  log every protocol step
  --tun NAME                   name of the TUN device all sessions share (default: poptop0; workers
                               share it too, a queue each, or without CAP_BPF have NAMEw0, NAMEw1, ...)
  --state-dir DIR              where the built-in configuration keeps its user (default: /var/lib/poptop)
  --control-socket PATH        socket for sessions/kill/reload (default: /run/poptop/control.sock)
  --status [ADDR:]PORT         Prometheus metrics (/metrics) and a live status page (/) on ADDR:PORT
                               (PORT alone: 127.0.0.1; replaces pptpd.conf's status); off by default
  --workers N|auto             share the sessions among N worker processes behind the one port and pool
                               ("auto": one per processor; replaces pptpd.conf's workers); default auto
                               (one process where the workers cannot share the TUN device)

Signals: SIGHUP (or "poptop reload") reads every file again and keeps the sessions; SIGTERM and
SIGINT tell every client and stop.
`;

const CLIENT_OPTIONS = `  -u, --user NAME              user name (required)
  --password-file FILE|-       read the password from the first line of FILE ("-": standard input)
  --password-stdin             read the password from standard input (a terminal asks without echo)
  -p, --password SECRET        the password itself: works, but every local user can read it in ps
                               (without any of these: the environment variable POPTOP_PASSWORD)
  --auth LIST                  methods accepted, preferred first: mschapv2, mschap, chap, pap (default: mschapv2)
  --mppe LIST|none             MPPE strengths, from 128,56,40; "none" for no encryption (default: 128, required)
  --stateful                   ask for stateful MPPE (default: stateless)
  --mtu N, --mru N             576..1500 (default: 1400)
  --lcp-echo-interval N        seconds between LCP echoes, 0..3600 (default: 30)
  --lcp-echo-failure N         unanswered echoes before the link is dead, 0..100 (default: 4)
  -d, --debug                  log every protocol step
`;

const CONNECT_HELP = `Usage: poptop connect SERVER --user NAME (--password-file FILE | --password-stdin) [options]

Connect to the PPTP server at the IPv4 address SERVER, bring up a TUN device with the address the
server assigns, and stay connected until Ctrl-C (or SIGTERM), which disconnects cleanly.

Options:
${CLIENT_OPTIONS}  --tun NAME                   TUN device name (default: pptp%d)
  --route ADDR[/PREFIX]        a route through the tunnel once it is up; repeatable (PREFIX default: 32)
`;

const LOAD_HELP = `Usage: poptop load SERVER --user NAME (--password-file FILE | --password-stdin) [options]

Open many sessions to SERVER from this host (a raw GRE socket per source address, no TUN device
each), print progress while they come up, then the set-up rate and the failures by reason; hold the
sessions, then close them all cleanly. Ctrl-C (or SIGTERM) during the set-up stops starting new
sessions and reports on those started; during the hold it closes them at once. Sessions log only
their warnings and errors; --debug logs every step of every session.

Options:
${CLIENT_OPTIONS}  -n, --sessions N             sessions to open (default: 100; at most 30000 per process)
  -c, --concurrency N          set-ups in flight at once, shared by the processes (default: 32)
  --hold SECONDS               keep the sessions up this long before closing them, 0..86400 (default: 0)
  --source LIST                send from these local addresses, in turn: 10.0.0.2,10.0.0.5-9; may be
                               repeated (default: the address the route to SERVER uses)
  -P, --processes N            spread the sessions over N processes, 1..64, each with its own
                               --source addresses (so N needs at least N of them) (default: 1)
  --progress SECONDS           a progress line on stderr this often; 0 for none (default: 5)
  --json                       print the result as JSON
`;

const SESSIONS_HELP = `Usage: poptop sessions [--json] [--control-socket PATH]

List the live sessions of the running server: id, user, client address, tunnel address,
authentication method, MPPE, state, uptime and traffic.

Options:
  --json                       print JSON instead of a table
  --control-socket PATH        the server's control socket (default: /run/poptop/control.sock)
`;

const KILL_HELP = `Usage: poptop kill TARGET [--json] [--control-socket PATH]

End sessions cleanly (LCP Terminate-Request, Call-Disconnect-Notify, Stop-Control-Connection).
TARGET is a session id (s12), a user name (all of that user's sessions) or an assigned address.

Options:
  --json                       print the ids of the sessions closed as JSON
  --control-socket PATH        the server's control socket (default: /run/poptop/control.sock)
`;

const RELOAD_HELP = `Usage: poptop reload [--json] [--control-socket PATH]
       poptop reload --pidfile FILE

Make the running server read pptpd.conf, the pppd options files and chap-secrets again, with the
flags it was started with. Sessions stay up. The answer says, in words: reloaded (what changed, what
live sessions keep, what needs a restart, such as listen, the TUN device or its localip), or the
errors with file:line, in which case the running configuration is kept. Exit status 0 when
reloaded, 1 when not. This is what SIGHUP does too.

Options:
  --json                       print the report as JSON
  --control-socket PATH        the server's control socket (default: /run/poptop/control.sock)
  -p, --pidfile FILE           send SIGHUP to the process in FILE instead (only if it is poptop);
                               the result is then in the server's log only
`;

const HASH_HELP = `Usage: poptop hash-password [PASSWORD]

Print the NT hash of PASSWORD as $NT$<32 hex digits>, which chap-secrets accepts in place of the
password (MS-CHAPv1, MS-CHAPv2, MPPE and PAP work with it; CHAP-MD5 needs the password itself).
Without PASSWORD it is read from standard input (one trailing newline removed), which keeps it out
of the shell history and ps.
`;

const DOCTOR_HELP = `Usage: poptop doctor [options]

Check this host for what would stop PPTP clients connecting, as the old pptpd FAQ did by hand:
/dev/net/tun, port 1723 (and which process holds it), nft/iptables rules for TCP 1723 and GRE, the
conntrack PPTP helper behind NAT, the secrets file (permissions, syntax), the pool against
\`connections\`, localip/remoteip against the host's networks, ip_forward, rp_filter, proxy ARP and the
MTU. Each finding is said in words with its fix. Exit status 1 when one would stop clients.

Options:
  -c, --conf, --config FILE    pptpd.conf to check (default: the built-in configuration)
  -o, --option, --options FILE the pppd options file, instead of the one pptpd.conf names
  --global-options FILE|none   pppd options read first
  --secrets FILE               chap-secrets to check
  --tun NAME                   the TUN device name the server uses (default: poptop0)
  --state-dir DIR              where the built-in configuration keeps its user
  --json                       print the findings as JSON
`;

const COMMAND_HELP: Record<string, string> = {
  serve: SERVE_HELP,
  connect: CONNECT_HELP,
  load: LOAD_HELP,
  sessions: SESSIONS_HELP,
  kill: KILL_HELP,
  reload: RELOAD_HELP,
  doctor: DOCTOR_HELP,
  'hash-password': HASH_HELP,
  help: USAGE,
  version: 'Usage: poptop version\n\nPrint the version of poptop.\n',
};

/** The help of one command, or the overall usage for an unknown one. */
export function commandHelp(command: string): string {
  return COMMAND_HELP[command] ?? USAGE;
}

/** True when the arguments ask for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
