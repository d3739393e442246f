//! The built-in rule set.
//!
//! Patterns are written in lower case, because every chain lower-cases, and
//! need no encoded variants, because every chain decodes. Rules at paranoia
//! level 1 must pass ordinary traffic: searches with quotes and keywords,
//! code and Markdown in bodies, URLs, e-mail addresses and non-Latin text.

use crate::decode::Transform::{self, *};
use crate::rules::{RuleInfo, RuleSpec, Severity, TargetKind, Test, ALL_VALUES, ARGS};

/// Decoding for most rules: URL, overlong UTF-8, HTML and JavaScript escapes.
///
/// The other decoding chains extend this one, so the filter computes it once
/// per value and continues from its output.
const TEXT: &[Transform] = &[
    UrlDecode,
    Utf8Fold,
    HtmlEntities,
    JsEscapes,
    RemoveNul,
    Lowercase,
];
/// [`TEXT`] with comments removed and whitespace compressed, for SQL.
const SQL: &[Transform] = &[
    UrlDecode,
    Utf8Fold,
    HtmlEntities,
    JsEscapes,
    RemoveNul,
    Lowercase,
    RemoveComments,
    CompressWhitespace,
];
/// [`TEXT`] with CSS escapes decoded, comments removed and whitespace
/// compressed, for markup and script.
/// CSS escapes can produce upper-case letters, so the value is lower-cased
/// again.
const MARKUP: &[Transform] = &[
    UrlDecode,
    Utf8Fold,
    HtmlEntities,
    JsEscapes,
    RemoveNul,
    Lowercase,
    CssEscapes,
    Lowercase,
    RemoveComments,
    CompressWhitespace,
];
/// [`TEXT`] with shell quoting and escapes inside words removed, for shell
/// commands.
const SHELL: &[Transform] = &[
    UrlDecode,
    Utf8Fold,
    HtmlEntities,
    JsEscapes,
    RemoveNul,
    Lowercase,
    ShellUnescape,
    CompressWhitespace,
];
/// [`SHELL`] without whitespace compression, so that a newline, which ends a
/// shell command as `;` does, stays in the value.
const SHELL_LINES: &[Transform] = &[
    UrlDecode,
    Utf8Fold,
    HtmlEntities,
    JsEscapes,
    RemoveNul,
    Lowercase,
    ShellUnescape,
];
/// Decoding for file paths, with `..` and backslashes kept.
const FILE: &[Transform] = TEXT;
/// Path normalization for paths that must not be requested at all.
const PATH: &[Transform] = &[UrlDecode, Utf8Fold, RemoveNul, NormalizePath, Lowercase];
/// Lower-casing only, for header values compared as they are.
const LOWER: &[Transform] = &[Lowercase];
/// Base64 decoding of a whole value that is base64, lower-cased; any other
/// value is empty for these rules.
const BASE64: &[Transform] = &[
    UrlDecode,
    JsEscapes,
    Base64DecodeOrEmpty,
    RemoveNul,
    Lowercase,
];

const ARG_VALUES: u16 = TargetKind::ArgValue.bit();
const URL_AND_ARGS: u16 = ARGS | TargetKind::Path.bit();
const NO_BODY: u16 = ALL_VALUES & !TargetKind::Body.bit();
const HEADERS: u16 = TargetKind::HeaderValue.bit();
const EVERYWHERE: u16 = ALL_VALUES;
/// Every value except raw bodies and multipart file contents, which carry
/// documents and code.
const FIELDS: u16 = ALL_VALUES & !TargetKind::Body.bit();

const fn rule(
    id: &'static str,
    name: &'static str,
    severity: Severity,
    paranoia: u8,
    scope: u16,
    transforms: &'static [Transform],
    test: Test,
) -> RuleSpec {
    RuleSpec {
        info: RuleInfo { id, name, severity },
        paranoia,
        scope,
        names: &[],
        skip_structured: true,
        transforms,
        test,
    }
}

/// Makes a rule inspect the headers in
/// [`crate::rules::STRUCTURED_HEADERS`] too.
const fn every_header(mut spec: RuleSpec) -> RuleSpec {
    spec.skip_structured = false;
    spec
}

/// Parameter names that applications pass to `include`, `require` or a
/// template loader, where a URL of a script means remote file inclusion. Names
/// of link parameters such as `url` or `next` are left out, because they carry
/// ordinary page addresses.
const INCLUDE_PARAMETERS: &[&str] = &[
    "include", "inc", "require", "file", "filename", "page", "path", "template", "tpl", "dir",
    "doc", "document", "load", "module", "mod", "view", "lang", "language", "theme", "skin",
    "conf", "config", "folder", "layout", "content", "show", "base", "root",
];

/// Names of parameters that frameworks read as the name of a function to
/// call, as the ThinkPHP `invokefunction` route and callback APIs do.
const CALLABLE_PARAMETERS: &[&str] = &[
    "function", "func", "fn", "callback", "cb", "call", "handler", "vars[0]", "vars[]",
];

const fn named(mut spec: RuleSpec, names: &'static [&'static str]) -> RuleSpec {
    spec.names = names;
    spec
}

use Severity::{Critical, Medium};

/// Commands that injection payloads run, Unix and Windows.
/// Names of shell commands that are not also common English words.
macro_rules! strong_commands {
    () => {
        r"cat|tac|nl|wget|curl|lwp-download|nc|ncat|netcat|socat|telnet|tftp|ftp|scp|sftp|ssh|rsync|sh|bash|zsh|dash|ksh|csh|tcsh|fish|busybox|id|whoami|uname|hostname|ifconfig|ip\s+a|netstat|ss|ps|env|printenv|ping|ping6|traceroute|nslookup|dig|python[23]?(?:\.\d+)?|perl|php\d*|ruby|node|lua|awk|gawk|sed|xargs|grep|egrep|ls|rm|cp|mv|chmod|chown|mkdir|echo|printf|base64|xxd|od|dd|tar|zip|unzip|gzip|pkill|killall|crontab|sudo|passwd|useradd|nohup|timeout|sleep|eval|exec|mkfifo|mknod|openssl|gcc|c89|c99|java|jrunscript|jjs|docker|kubectl|systemctl|shutdown|reboot|chattr|lsof|tcpdump|nmap|cscli|apt-get|yum|dnf|apk|pip|npm|gem|git|svn|mysql|psql|sqlite3|redis-cli|mongo|powershell|pwsh|cmd|cmd\.exe|certutil|bitsadmin|netsh|reg|regsvr32|rundll32|mshta|wmic|cscript|wscript|tasklist|taskkill|systeminfo|ipconfig|bcdedit|bcdboot|diskpart|vssadmin|schtasks|attrib|icacls|whoami\.exe|msiexec|forfiles|findstr|ansible(?:-[a-z]+)?|chef(?:-[a-z]+)?|knife|visudo|aptitude|regedit|gdb|strace|ltrace|iwr|irm|curl\.exe|wget\.exe|nslookup\.exe|bitsadmin\.exe|setsid|chroot|unshare|nsenter|pkexec|doas|xterm|ncat\.exe|tclsh|jshell|irb|php-cgi|base32|zcat|zgrep|bzcat|xzcat|ldd|ld\.so|vim?|nano|emacs|perf|uptime|whereis|aria2c|axel|sendmail|lsb_release|hexdump|getent|pgrep"
    };
}

/// Names of shell commands that are also common English words (`more`,
/// `host`, `find`), which count only with an argument that looks like one.
macro_rules! word_commands {
    () => {
        r"head|tail|more|less|fetch|host|w|who|last|set|export|find|touch|kill|dir|type|copy|file|sort|cut|make|script|expect|service|mount|ed|ex|rev|wish|net|del|halt|tee|stat|strings|uniq|wc|su|cc|locate|which|history|route|groups|users|apt"
    };
}

/// Optional binary directory before a command name.
macro_rules! bin_prefix {
    () => {
        r"(?:/(?:usr/)?(?:local/)?s?bin/)?"
    };
}

macro_rules! unix_command {
    () => {
        concat!(
            bin_prefix!(),
            "(?:",
            strong_commands!(),
            "|",
            word_commands!(),
            ")"
        )
    };
}

/// Names of the commands in `unix_command!`, as prefilter literals for
/// [`Test::WordRegex`], which lets digits follow them as in `python3`.
const COMMAND_WORDS: &[&str] = &[
    "cat",
    "tac",
    "nl",
    "head",
    "tail",
    "more",
    "less",
    "wget",
    "curl",
    "fetch",
    "lwp-download",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "tftp",
    "ftp",
    "scp",
    "sftp",
    "ssh",
    "rsync",
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    "id",
    "whoami",
    "uname",
    "hostname",
    "ifconfig",
    "ip",
    "netstat",
    "ss",
    "ps",
    "w",
    "who",
    "last",
    "env",
    "printenv",
    "set",
    "export",
    "ping",
    "ping6",
    "traceroute",
    "nslookup",
    "dig",
    "host",
    "python",
    "perl",
    "php",
    "ruby",
    "node",
    "lua",
    "awk",
    "gawk",
    "sed",
    "xargs",
    "find",
    "grep",
    "egrep",
    "ls",
    "dir",
    "rm",
    "cp",
    "mv",
    "chmod",
    "chown",
    "touch",
    "mkdir",
    "echo",
    "printf",
    "base64",
    "xxd",
    "od",
    "dd",
    "tar",
    "zip",
    "unzip",
    "gzip",
    "kill",
    "pkill",
    "killall",
    "crontab",
    "sudo",
    "su",
    "passwd",
    "useradd",
    "nohup",
    "timeout",
    "sleep",
    "eval",
    "exec",
    "mkfifo",
    "mknod",
    "openssl",
    "gcc",
    "cc",
    "c89",
    "c99",
    "make",
    "java",
    "jrunscript",
    "jjs",
    "docker",
    "kubectl",
    "systemctl",
    "service",
    "shutdown",
    "reboot",
    "halt",
    "mount",
    "cut",
    "sort",
    "uniq",
    "wc",
    "tee",
    "strings",
    "file",
    "stat",
    "chattr",
    "lsof",
    "tcpdump",
    "nmap",
    "cscli",
    "apt",
    "apt-get",
    "yum",
    "dnf",
    "apk",
    "pip",
    "npm",
    "gem",
    "git",
    "svn",
    "mysql",
    "psql",
    "sqlite3",
    "redis-cli",
    "mongo",
    "powershell",
    "pwsh",
    "cmd",
    "cmd.exe",
    "certutil",
    "bitsadmin",
    "net",
    "netsh",
    "reg",
    "regsvr32",
    "rundll32",
    "mshta",
    "wmic",
    "cscript",
    "wscript",
    "tasklist",
    "taskkill",
    "systeminfo",
    "ipconfig",
    "type",
    "del",
    "copy",
    "bcdedit",
    "bcdboot",
    "diskpart",
    "vssadmin",
    "schtasks",
    "attrib",
    "icacls",
    "whoami.exe",
    "msiexec",
    "forfiles",
    "findstr",
    "ansible",
    "chef",
    "knife",
    "visudo",
    "aptitude",
    "regedit",
    "gdb",
    "strace",
    "ltrace",
    "perf",
    "iwr",
    "irm",
    "curl.exe",
    "wget.exe",
    "nslookup.exe",
    "bitsadmin.exe",
    "expect",
    "script",
    "setsid",
    "chroot",
    "unshare",
    "nsenter",
    "pkexec",
    "doas",
    "xterm",
    "ncat.exe",
    "tclsh",
    "wish",
    "jshell",
    "irb",
    "php-cgi",
    "rev",
    "base32",
    "zcat",
    "zgrep",
    "bzcat",
    "xzcat",
    "ldd",
    "ld.so",
    "vi",
    "vim",
    "nano",
    "emacs",
    "ed",
    "ex",
    "uptime",
    "whereis",
    "aria2c",
    "axel",
    "sendmail",
    "lsb_release",
    "hexdump",
    "getent",
    "pgrep",
    "locate",
    "which",
    "history",
    "route",
    "groups",
    "users",
];

/// What follows a command name in a payload: the end of the value, a flag, a
/// path, a home or variable reference, an address, a redirection, another
/// separator, a `#` that comments out the rest of the application's command,
/// or a PowerShell cmdlet or reconnaissance command as the argument. Prose
/// such as "dogs; cat people" has none of these.
macro_rules! command_tail {
    () => {
        r#"(?:\s*$|\s*[;&|<>`)]|\s+#|\s+(?:iex|iwr|irm|invoke-\w+|new-object|start-process|whoami|uname|hostname)\b|\s+-{1,2}[a-z0-9]|\s+[~.$/\\'"]|\s+\S*/|\s+\d{1,3}\.\d{1,3}\.|\s+[a-z]:\\|\s+%[a-z]+%|\s+\*|\s+\w+\.\w{2,4}\b|\s+[\w-]+(?:\.[\w-]+)*\.[a-z]{2,24}\b|\s+\d+\s*(?:$|[;&|`)])|\s+(?:localhost|google\.com|127\.0\.0\.1)|\s+/[a-z]|\s+(?:alerts|list|-c|\+))"#
    };
}

/// The argument that must follow a name of [`word_commands`] after a
/// separator: an option, a path, an address or a host name. The end of the
/// value or another separator is not enough, as in `Shoes, bags & more` or
/// `content-type;host;`.
macro_rules! word_command_tail {
    () => {
        r#"(?:\s+-{1,2}[a-z0-9]|\s+[~.$/\\'"]|\s+\S*/|\s+\d{1,3}\.\d{1,3}\.|\s+[a-z]:\\|\s+%[a-z]+%|\s+\*|\s+[\w-]+(?:\.[\w-]+)*\.[a-z]{2,24}\b|\s+(?:localhost|127\.0\.0\.1))"#
    };
}

/// A command name with an argument that makes it a command line: a name of
/// [`strong_commands`] before [`command_tail`], or one of [`word_commands`]
/// before [`word_command_tail`].
macro_rules! command_with_argument {
    () => {
        concat!(
            "(?:(?:",
            strong_commands!(),
            ")",
            command_tail!(),
            "|(?:",
            word_commands!(),
            ")",
            word_command_tail!(),
            ")"
        )
    };
}

/// Literals of [`SERVER_CONFIG_FILE`].
const SERVER_CONFIG_LITERALS: &[&str] = &[
    ".ht",
    ".user.ini",
    "php.ini",
    "web.config",
    "wp-config",
    "configuration.php",
    "localsettings",
    ".env",
    "authorized_keys",
    "global.asa",
    ".bash",
    ".profile",
];

/// A file name that configures the web server, the PHP runtime, the
/// application or a login shell.
const SERVER_CONFIG_FILE: &str = r"(?:^|[/\\])(?:\.ht(?:access|passwd|digest)|\.user\.ini|php\.ini|web\.config|wp-config[^/\\]*|configuration\.php|localsettings\.php|\.env(?:\.\w+)?|authorized_keys|global\.asax?|\.bash(?:rc|_profile|_logout)|\.profile)\s*$";

/// Parameter names that applications pass as a host name or address to a
/// network tool such as `ping`, `nslookup` or `traceroute`. Host names and
/// addresses contain no spaces and no shell syntax.
const HOST_PARAMETERS: &[&str] = &[
    "host",
    "hostname",
    "ip",
    "ipaddr",
    "ipaddress",
    "ip_address",
    "addr",
    "domain",
    "ping",
];

/// Parameter names whose value an application runs as a command.
const COMMAND_PARAMETERS: &[&str] = &["cmd", "command", "exec", "execute", "run", "daemon"];

/// Programs that Windows payloads start to prove execution.
macro_rules! windows_programs {
    () => {
        r"calc|notepad|mspaint|explorer|cmd|powershell|pwsh|wscript|cscript|whoami|systeminfo|ipconfig|tasklist"
    };
}

/// The built-in rules, in the order they run.
pub const RULES: &[RuleSpec] = &[
    // Scanners.
    named(
        rule(
            "scanner-user-agent",
            "Security scanner User-Agent",
            Critical,
            1,
            HEADERS,
            LOWER,
            Test::Phrases(&[
                "nikto",
                "sqlmap",
                "nmap",
                "nessus",
                "arachni",
                "acunetix",
                "wpscan",
                "dirbuster",
                "dirsearch",
                "gobuster",
                "wfuzz",
                "nuclei",
                "zgrab",
                "masscan",
                "openvas",
                "havij",
                "commix",
                "w3af",
                "netsparker",
                "appscan",
                "whatweb",
                "jaeles",
                "ffuf",
                "feroxbuster",
                "skipfish",
                "zmeu",
                "morfeus",
                "paros",
                "webinspect",
                "metasploit",
                "xsser",
                "bsqlbf",
                "sqlninja",
                "pangolin",
                "fimap",
                "dotdotpwn",
                "brutus",
                "hydra",
                "grabber",
                "nuclei",
                "burpcollaborator",
                "interactsh",
                "qualys",
                "detectify",
                "wapiti",
                "vega/",
                "zap/",
                "jorgee",
                "webshag",
                "nasl",
                "teh forest lobster",
                "sysscan",
                "struts-pwn",
                "nsauditor",
                "absinthe",
                "black widow",
                "mozilla/5.0 sf/",
                "cgichk",
                "webvulnscan",
                "httpx -",
                "fuzz faster u fool",
            ]),
        ),
        &["user-agent"],
    ),
    // Hosts of the out-of-band services that scanners put into payloads to
    // learn whether a server fetched a URL or resolved a name.
    every_header(rule(
        "scanner-oast-domain",
        "Out-of-band interaction domain of a security scanner",
        Critical,
        1,
        EVERYWHERE,
        TEXT,
        Test::Regex(
            &["oast", "burpcollaborator", "interact", "dnslog", "ceye"],
            r"\b(?:oastify\.com|burpcollaborator\.net|interact\.sh|interactsh\.com|oast\.(?:pro|live|site|online|fun|me)|dnslog\.cn|ceye\.io)\b",
        ),
    )),
    rule(
        "scanner-header",
        "Header that a security scanner sends",
        Critical,
        1,
        TargetKind::HeaderName.bit(),
        LOWER,
        Test::Regex(&["acunetix", "x-scanner", "x-wipp"], r"^(?:acunetix-[\w-]+|x-scanner|x-wipp)$"),
    ),
    // Paths that only exploit probes request: PHPUnit's eval-stdin.php,
    // Laravel Ignition's solution runner, and the command endpoints of
    // Boa, GPON and HNAP routers.
    rule(
        "scanner-exploit-path",
        "Request for a path that only exploit probes use",
        Critical,
        1,
        TargetKind::Path.bit(),
        PATH,
        Test::Regex(
            &["eval-stdin", "_ignition", "boaform", "gponform", "hnap1"],
            r"/eval-stdin\.php(?:$|/)|/_ignition/execute-solution(?:$|/)|/boaform/admin/formlogin$|/gponform/diag_form$|^/hnap1/?$",
        ),
    ),
    // Path traversal and local file inclusion.
    rule(
        "lfi-traversal",
        "Path traversal with a dot-dot segment",
        Critical,
        1,
        NO_BODY,
        FILE,
        Test::Regex(
            &["..", "0x2e", "%2e", "%u"],
            r"(?:^|[/\\=:])(?:\.|0x2e|%2e|%u002e){2}(?:[/\\]|0x2f|0x5c|%2f|%5c|$)|(?:\.|0x2e){2,}[/\\;\x{2215}\x{2216}]",
        ),
    ),
    rule(
        "lfi-sensitive-file",
        "Access to a sensitive system file",
        Critical,
        1,
        EVERYWHERE,
        FILE,
        Test::Regex(
            &[
                "etc",
                "proc",
                "win",
                "boot.ini",
                ".ssh",
                ".aws",
                ".docker",
                ".kube",
                ".gnupg",
                ".npmrc",
                ".netrc",
                ".pgpass",
                ".my.cnf",
                ".azure",
                "id_rsa",
                "history",
                "htpasswd",
                "web.config",
                "wp-config",
                "system32",
                "/var/",
                ".git",
                ".env",
                "/root",
                "sys/",
            ],
            r"/etc/+(?:\./+)*(?:passwd|shadow|group|gshadow|hosts|hostname|issue|motd|crontab|sudoers|fstab|mtab|resolv\.conf|os-release|profile|bashrc|environment|security|ssh|ssl|mysql|apache2|httpd|nginx|php|init\.d|cron|pam\.d|network|sysconfig|master\.passwd|pwd\.db|spwd\.db)\b|/proc/(?:self|\d+|thread-self)/|/proc/(?:net|version|cpuinfo|meminfo|mounts|cmdline|sched_debug|kcore)\b|/sys/(?:class|kernel|devices|firmware|fs|power|module)\b|\bwin\.ini\b|\bboot\.ini\b|[/\\]system32\b|\bsystem32[/\\]|windows[/\\](?:system|repair|win\.ini|debug|panther)|\.ssh[/\\](?:id_|authorized_keys|known_hosts)|\.aws[/\\](?:credentials|config)|\.(?:bash|zsh|mysql|psql|python)_history\b|\.htpasswd\b|\bweb\.config\b|wp-config\.php|\.git[/\\](?:config|head|index|objects)|/\.env\b|/root/|/var/(?:log|run|mail|spool|www)/|/var/lib/(?:mlocate|php\d*/sess|dpkg/status|mysql/|pgsql/data/|jenkins/secrets)|/usr/local/etc/|[/\\]\.(?:docker|kube|aws|ssh|gnupg|azure)[/\\]|\.npmrc\b|\.netrc\b|\.pgpass\b|\.my\.cnf\b",
        ),
    ),
    rule(
        "lfi-restricted-path",
        "Request for a version control, credential or tool configuration directory",
        Critical,
        1,
        TargetKind::Path.bit(),
        PATH,
        Test::Regex(
            &["/."],
            r"/\.(?:git|svn|hg|bzr|cvs|env|aws|ssh|gnupg|docker|kube|npmrc|netrc|pgpass|bash_history|zsh_history|history|htaccess|htpasswd|ds_store|idea|vscode|cursor|cursorignore|cursorrules|cline|clinerules|aider|aider\.conf\.yml|claude|continue|windsurf|codeium|copilot|n8n|config|local|terraform|vagrant|azure|gcloud|boto|s3cfg|well-known/security\.txt\.bak|github/workflows|gitlab-ci\.yml|travis\.yml|circleci|mcp\.json|roo|roomodes|amazonq|kiro|junie|gemini|codex|goose|tabnine|sourcegraph|augment|zed)(?:$|[/.\w-])",
        ),
    ),
    // Remote file inclusion.
    rule(
        "rfi-url-with-ip",
        "Remote file inclusion of a URL with a numeric host",
        Critical,
        1,
        ARG_VALUES | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["://"],
            r"(?:https?|ftps?|file|php|data|gopher|dict|ldaps?|jar|phar|expect|smb|tftp)://(?:[^/@\s]*@)?(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[?[0-9a-f]{1,4}:[0-9a-f]{0,4}:[0-9a-f:]*)",
        ),
    ),
    rule(
        "rfi-include-parameter",
        "Remote file inclusion through an include or path parameter",
        Critical,
        1,
        ARGS,
        TEXT,
        Test::Regex(
            &["://", "_conf", "glob", "gallery", "mosconfig"],
            r"^(?:(?:include|require|inc|file|path|page|template|tpl|dir|document_root|root|conf|config|base|mosconfig|_conf\[[^\]]*\]|[a-z_]*path|[a-z_]*dir)\s*=\s*)?(?:https?|ftps?)://[^?]*\.(?:txt|inc|sh|pl|py)\?|(?:https?|ftps?)://[^?]*\.(?:php|cgi|asp|aspx|jsp|gif|jpg)\?+(?:&|\s*$)|\b(?:_conf|glob|gallery|mosconfig)[\[_]",
        ),
    ),
    rule(
        "rfi-trailing-question-mark",
        "Remote file inclusion with a trailing question mark, or a script or text file URL with a trailing number sign",
        Critical,
        1,
        ARG_VALUES | TargetKind::CookieValue.bit(),
        TEXT,
        Test::Regex(
            &["?", "#"],
            r"^\s*(?:file|ftps?|https?)\b[^\s]*\?+\s*$|^\s*(?:ftps?|https?)://[^\s?#]*/[^\s/?#]+\.(?:txt|php\d?|phtml|inc|sh|pl|py|cgi|asp|aspx|jsp|gif|jpe?g|png|dat|log)#+\s*$",
        ),
    ),
    named(
        rule(
            "rfi-script-url-parameter",
            "Remote file inclusion: URL of a script or text file in an include parameter",
            Critical,
            1,
            ARG_VALUES | TargetKind::CookieValue.bit(),
            TEXT,
            Test::Regex(
                &["://"],
                r"^\s*(?:https?|ftps?)://[^\s?#]+\.(?:php\d?|phtml|inc|txt|sh|pl|py|cgi|asp|aspx|jsp|dat|log|gif|jpe?g|png)(?:[?#]|\s*$)",
            ),
        ),
        INCLUDE_PARAMETERS,
    ),
    named(
        rule(
            "rfi-url-in-include-parameter",
            "Remote file inclusion: any remote URL in a parameter named for code inclusion",
            Critical,
            1,
            ARG_VALUES | TargetKind::CookieValue.bit(),
            TEXT,
            Test::Regex(&["://", "//"], r"^\s*(?:(?:https?|ftps?):)?//[^\s/?#]+"),
        ),
        &["include", "inc", "require", "require_once", "include_once", "tpl", "template"],
    ),
    rule(
        "rfi-unc-path-to-ip",
        "Remote file inclusion: UNC path to a numeric host",
        Critical,
        1,
        ARG_VALUES,
        TEXT,
        Test::Regex(
            &["\\\\", "//"],
            r"^\s*(?:\\\\|//)\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}[\\/]\w",
        ),
    ),
    // NOTE: PHP's data: wrapper runs code whatever the media type, so an
    // image data URL that carries PHP passes. Image data URLs are common in
    // JSON APIs, and the wrapper needs allow_url_include, which is off by
    // default.
    rule(
        "rfi-wrapper-scheme",
        "Stream wrapper or non-web scheme in an argument",
        Critical,
        1,
        ARG_VALUES | TargetKind::CookieValue.bit() | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &[":"],
            r"(?:^|[\s'(=])(?:file|ftps|ldaps?|gopher|dict|jar|phar|expect|php|zip|zlib|compress\.zlib|compress\.bzip2|glob|rar|ogg|ssh2\.(?:shell|exec|tunnel|sftp|scp)|tftp|netdoc|sftp|smb|rmi|iiop|corba|nis|nds|jndi|url:\w+)://|^\s*(?:url:)?file:|^\s*data:(?://)?(?:(?:text|application)/[\w+.-]*|[\w+.-]*/[\w+.-]*php[\w+.-]*)?(?:;[\w=-]+)*(?:;base64)?,|^\s*data:[a-z]+/[\w.+-]+\s*$|^\s*ftps?://",
        ),
    ),
    // Command injection.
    rule(
        "cmdi-unix-command",
        "Command injection: a shell command after a separator",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::WordRegex(
            COMMAND_WORDS,
            concat!(
                r"(?:[;|&\n`{]|\$\(|[<>]\(|\|\||\b(?:time|strace|ltrace|nohup|nice|timeout|setsid|sudo|doas|env|xargs|watch|exec|command|builtin|chroot|trap|busybox|stdbuf|unbuffer)\s+(?:-\S+\s+)*)\s*(?:\{\s*|\(\s*|!\s*)?",
                bin_prefix!(),
                "(?:",
                command_with_argument!(),
                r"|(?:who|set)\s*$)"
            ),
        ),
    ),
    rule(
        "cmdi-newline-command",
        "Command injection: a shell command on the line after a value of one word",
        Critical,
        1,
        FIELDS,
        SHELL_LINES,
        // A host name, address or file name, then a newline that ends the
        // application's command and a command of the attacker's. Text with
        // a shell line further down, as in a post with a code block, has
        // spaces or a code fence on its first line.
        Test::WordRegex(
            COMMAND_WORDS,
            concat!(
                r"^[\w.:/@%+,=-]*[\r\n]+[ \t]*",
                bin_prefix!(),
                command_with_argument!()
            ),
        ),
    ),
    rule(
        "cmdi-value-is-command",
        "Command injection: an argument that is a shell command line",
        Critical,
        1,
        ARG_VALUES | TargetKind::HeaderValue.bit() | TargetKind::CookieValue.bit(),
        SHELL,
        Test::WordRegex(
            COMMAND_WORDS,
            concat!(
                r"^\s*",
                bin_prefix!(),
                "(?:(?:",
                strong_commands!(),
                r#")(?:(?:\s+-{1,2}[a-z0-9]+)+\s*(?:$|[~./$*'"<>|;&`=]|[\w-]+[./])|\s*[<>|;`]|\s*&&|&[^\s&]|\s*&\s*$|\s*&\s+(?:"#,
                strong_commands!(),
                r#")(?:\s|$))|(?:"#,
                unix_command!(),
                r#")(?:\s+[~.$]?/[\w.~/*?-]+|\s+[a-z]:\\|\s+\$|\s+\d{1,3}\.\d{1,3}\.|\s+(?:localhost|google\.com|127\.0\.0\.1)\b))|^\s*(?:whoami|uname|ifconfig|ipconfig|systeminfo|netstat|tasklist|printenv)\s*$"#
            ),
        ),
    ),
    rule(
        "cmdi-substitution",
        "Command injection with command or process substitution",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["$(", "`", "<(", ">(", "${"],
            concat!(
                r"\$\(\s*[a-z/][\w./-]+[^)]*\)|`\s*",
                unix_command!(),
                command_tail!(),
                r"[^`]*`|<\(\s*[a-z/][\w./-]*|(?:^|[\s;|&])>\(\s*[a-z/][\w./-]*|\$\{[a-z_]+(?::-|:=|##?|%%?|/)[^}]*\}"
            ),
        ),
    ),
    rule(
        "cmdi-shell-evasion",
        "Command injection with shell globbing, brace expansion or variables",
        Critical,
        1,
        FIELDS,
        FILE,
        Test::Regex(
            &["?", "*", "{", "$", "/e", "/["],
            r"/(?:b\?n|b[\*\?]\w*|\?\?\?|e\?c|e[\*\?]c|\?{2,}\w*|u\?r)/|\{\s*[a-z]+,[^},]*[/-][^}]*\}|\$\{?ifs\}?|\w\$\{[a-z_]\w*\}\w|\w\$[a-z_]\w{0,2}(?:[\s/\\;|&<>'\x22`)]|$)|/e\\?t\\?c/p\\?a\\?s\\?s|\b(?:cat|ls|id|nc|wget|curl)\$(?:\{[^}]*\}|[0-9@*])|\{\s*,[^{}\s]*[a-z/$][^{}\s]*\}|[a-z]\{[a-z]*,[a-z]*\}[a-z]|/[a-z]{0,4}[?*][a-z?*]{0,8}/[a-z?*]|/\[[a-z/]{1,8}\][a-z]",
        ),
    ),
    // Shells drop empty quotes, so `p""y""thon` runs `python`. Three empty
    // pairs between letters are needed, because escaped SQL text such as
    // `O''Reilly''s` has two, and digits end a piece, because CSV text
    // writes inches as `24""x36""x2""`.
    rule(
        "cmdi-quote-split-word",
        "Command injection: a word split by empty shell quotes",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["''", "\"\""],
            r#"[a-z](?:(?:''|"")[a-z./-]+){2}(?:''|"")[a-z./-]"#,
        ),
    ),
    rule(
        "cmdi-windows",
        "Command injection: Windows shell and PowerShell commands",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &[
                "cmd",
                "powershell",
                "pwsh",
                "%",
                "wmic",
                "certutil",
                "iex",
                "invoke-",
                "net ",
                "-enc",
                "start-process",
                "downloadstring",
                "get-",
                "set-",
                "new-object",
                "reg ",
                "start ",
                "dir ",
                "ver",
            ],
            r"(?:^|[;&|])\s*(?:reg\s+(?:query|add|delete|export|import|save|load)\b|start\s+(?:/b\s+)?(?:calc|cmd|powershell|pwsh|notepad|mshta|rundll32|regsvr32|[\w.-]+\.(?:exe|bat|cmd|ps1|vbs|hta))\b|dir\s+[a-z]:(?:[\\/\s]|$)|ver\s*$)|\bcmd(?:\.exe)?\s*/[ck]\b|\b(?:powershell|pwsh)(?:\.exe)?\s+(?:-|/)\w|\binvoke-(?:expression|webrequest|command|item|restmethod|mimikatz)\b|\biex\s*[(\s]|new-object\s+(?:net\.webclient|system\.net)|\.downloadstring\s*\(|\bstart-process\b|\bwmic\s+\w|\bcertutil(?:\.exe)?\s+-\w|%(?:comspec|systemroot|windir|programfiles|userprofile|temp|appdata|computername|username|path)%|\bnet\s+(?:user|localgroup|view|share|use)\b|-enc(?:odedcommand)?\s+[a-z0-9+/=]{16,}|\b(?:get|set)-(?:content|childitem|itemproperty|process|service|wmiobject|executionpolicy)\b",
        ),
    ),
    rule(
        "cmdi-variable-command",
        "Command injection: shell variable set and then expanded inside a command word",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["$"],
            r"(?:^|[;&|\s])[a-z_]\w*=[^\s;&|]*\s*(?:;|&&|\|\||\n)\s*[a-z./]*\$\{?[a-z_]\w*\}?[a-z./$]",
        ),
    ),
    rule(
        "cmdi-separator-command-line",
        "Command injection: a value that starts with a shell separator and a command with arguments, or a CLI dot command",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &[";", "|", "&&", "\n"],
            r"^\s*(?:;|\|\|?|&&|\n)\s*(?:[a-z][\w.-]*\s+(?:-{1,2}[a-z]|[~/$]|\d{1,3}\.\d{1,3}\.|\d{1,2}:\d{2}\b)|\.[a-z]{3,})",
        ),
    ),
    rule(
        "cmdi-argument-injection",
        "Command injection through an option that makes a program run a command: ssh -oProxyCommand, git --upload-pack, tar --to-command",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["proxycommand", "localcommand", "-pack", "--to-command", "--checkpoint-action", "--use-compress-program"],
            r"-o ?(?:proxycommand|localcommand) ?=|--(?:upload|receive)-pack ?=|--to-command ?=|--checkpoint-action ?= ?exec|--use-compress-program ?=",
        ),
    ),
    rule(
        "cmdi-chained-cd-or-here-string",
        "Command injection: a directory change chained to another command, or a here-string fed to a command",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["cd ", "<<<"],
            r"(?:^|[;&|]\s*)cd\s+[~./][\w./-]*\s*(?:;|&&|\|)\s*[a-z]|[a-z0-9]\s*<<<\s*[\w'$]",
        ),
    ),
    rule(
        "cmdi-unix-shell-path",
        "Command injection: path of a shell or system binary",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["bin/"],
            r"(?:^|[\s;|&`(=<>'])/(?:usr/)?(?:local/)?s?bin/(?:[a-z][\w.-]*)",
        ),
    ),
    // PHP injection.
    rule(
        "php-open-tag",
        "PHP injection: PHP open tag",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["<?", "<%", "php]", "php}", "[?php"],
            r"<\?(?:php\b|=|\s)|<\?php|\[\?php|\[/?php\]|\{/?php\}",
        ),
    ),
    rule(
        "php-superglobal",
        "PHP injection: superglobal or magic variable",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["$", "_", "php://"],
            r"\$_(?:get|post|cookie|request|server|env|files|session)\b|\$\s*\{\s*['\x22$@]|\$globals\b|\bphp://(?:input|filter|stdin|memory|temp|fd)|\$\s+\{\s*\w+\s*\}|\$\{\s+\w+\s*\}|\$\w+\s*->\s*\$?\w+\s*\(|\$http_raw_post_data|\$http_(?:get|post|cookie|server|env|session|post_files)_vars\b|\$argv\b",
        ),
    ),
    // Names that only PHP uses, such as `fsockopen` or `shell_exec`, count
    // with any text before them. Short or common names such as `system`,
    // `file` or `copy` count only where no letter, digit or `.` precedes.
    // A call without arguments counts only as the whole value, as in
    // `substr()`, so that prose such as "what eval() does" passes, and the
    // functions that take a callback count when a string names a code or
    // file function, as in `array_map('system', ...)`.
    rule(
        "php-function-call",
        "PHP injection: call of a code execution or file function",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["("],
            r#"(?:fsockopen|pfsockopen|shell_exec|proc_open|passthru|pcntl_exec|php_uname|phpinfo|show_source|highlight_file|create_function|call_user_func(?:_array)?|file_get_contents|file_put_contents|base64_decode|gzinflate|gzuncompress|str_rot13|stream_socket_client)\s*\(|(?:^|[^\w.])['"]?(?:eval|assert|system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|create_function|call_user_func(?:_array)?|preg_replace|include(?:_once)?|require(?:_once)?|file_get_contents|file_put_contents|fopen|fwrite|fputs|readfile|file|unlink|rmdir|mkdir|copy|rename|chmod|base64_decode|gzinflate|gzuncompress|str_rot13|convert_uu|phpinfo|getenv|putenv|ini_set|ini_get|set_time_limit|highlight_file|show_source|php_uname|posix_\w+|array_diff\w*|extract|parse_str|unserialize|serialize|var_dump|print_r|mail|dl|symlink|link|scandir|glob|opendir|readdir|stream_get_contents|curl_exec|fsockopen|pfsockopen|ob_start|get_defined_vars|debug_zval_dump|escapeshellcmd|escapeshellarg|apache_\w+|settype|is_callable|function_exists|method_exists|constant|strrev|hex2bin|chr|ord|implode|explode|str_replace|substr|strtolower|strtoupper|unpack|gethostbyname|gethostbynamel|fsockopen|(?:curl|pg|odbc|sodium|tidy|mysqli|ldap|ftp|posix|pcntl|proc|stream|socket|openssl|gz|bz|imap|apache|exif|finfo|mb|iconv|xmlrpc|ssh2|dba|oci|sqlsrv|sqlite)_[a-z0-9_]+)['"]?(?:\s*\))?(?:\(\s*(?:[$'"\w(\[]|\)\s*;?\s*$|$)|\s+\(\s*(?:[$'"(\[]|\)\s*;?\s*$|$))|(?:^|[^\w.])(?:phpinfo|php_uname|getenv|get_defined_vars|getcwd|posix_\w+|scandir|ob_start|debug_zval_dump)\s*\(\s*\)|\b(?:array_map|array_filter|array_walk(?:_recursive)?|array_reduce|usort|uasort|uksort|register_shutdown_function|register_tick_function|iterator_apply)\s*\([^)]{0,200}?['"](?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|assert|eval|create_function|phpinfo|file_put_contents|file_get_contents|include|require|readfile|unlink|call_user_func)['"]"#,
        ),
    ),
    rule(
        "php-variable-function",
        "PHP injection: variable function call or string concatenation call",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["(", "$"],
            r#"\$+\{?\s*@?[a-z_]\w*\s*\}?(?:\s|/\*.*?\*/|(?:#|//)[^\n]*\n|\[[^\]]{0,40}\])*\(\s*[\w'"$@)]|\(\s*['"][a-z_]\w*['"]\s*\)\s*\(|['"]\s*\.\s*['"][a-z_]*['"]?\s*\)\s*\(|\$\w+\s*\(\s*['"$]|\$\{\s*['"]?\w+['"]?\s*\}\s*\(|['"](?:\\[0-7]{1,3}){2,}['"]\s*\("#,
        ),
    ),
    // Separate from the rule above, whose literals for this form would be
    // the parentheses of most user agents. With whitespace compressed, `) (`
    // or `)(` gates it.
    rule(
        "php-parenthesized-call",
        "PHP injection: a call through a parenthesized name, such as (system)('id')",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(&[")(", ") ("], r"\( ?[a-z_]\w* ?\) ?\("),
    ),
    rule(
        "php-config-directive",
        "PHP injection: configuration directive or serialized object",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &[
                "allow_url",
                "auto_",
                "disable_",
                "open_basedir",
                "safe_mode",
                "unserialize_max",
                "register_globals",
                "file_uploads",
                "enable_dl",
                "display_",
                "error_",
                "suhosin.",
                "session.",
                "zend.",
                "opcache.",
                "assert.",
                "mbstring.",
                "extension",
                "memory_limit",
                "max_execution",
                "max_input",
                "smtp",
                "sendmail",
                "include_path",
                "upload_",
                "post_max",
                "doc_root",
                "user_dir",
                "log_errors",
                "short_open_tag",
                "expose_php",
                "html_errors",
                ":{",
            ],
            r#"^\s*(?:extension|zend_extension|memory_limit|max_execution_time|max_input_\w+|smtp|smtp_port|sendmail_\w+|include_path|upload_\w+|post_max_size|doc_root|user_dir|log_errors|error_log|short_open_tag|expose_php|html_errors|mbstring\.\w+|display_\w+)\s*=|\b(?:allow_url_include|allow_url_fopen|auto_prepend_file|auto_append_file|disable_functions|open_basedir|safe_mode|unserialize_max_depth|register_globals|file_uploads|enable_dl|display_errors|error_reporting|suhosin\.\w+|session\.\w+|zend\.\w+|opcache\.\w+|assert\.\w+)\s*=|(?:^|[;{])\s*[oc]:\+?\d+:"[\w\\]+":\d+:\{|(?:^|[;{])a:\d+:\{[isbdo]:"#,
        ),
    ),
    rule(
        "php-wrapper-upload",
        "PHP injection: upload or request of a PHP script",
        Critical,
        1,
        TargetKind::FileName.bit() | HEADERS,
        LOWER,
        Test::Regex(
            &[".ph", ".inc", ".pht", ". ph", "sess_"],
            r"\.\s*(?:php\d*|phtml|phar|pht|phps|inc|shtml)\s*(?:$|\.|;|\s|%00)|(?:^|/)sess_[a-z0-9,-]{16,}$",
        ),
    ),
    // Java, Spring, OGNL, deserialization.
    rule(
        "java-class-reference",
        "Java injection: reference to a code execution or deserialization class",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &[
                "java",
                "runtime",
                "processbuilder",
                "class",
                "invoker",
                "transformer",
                "ognl",
                "spring",
                "bsh",
                "groovy",
                "nashorn",
                "xalan",
                "templatesimpl",
                "beanfactory",
                "factory",
                "comparator",
                "javax",
                "sun.",
                "com.",
                "org.omg",
                "org.",
                "#context[",
                "allowstaticmethodaccess",
                "annotationinvocationhandler",
                "badattributevalueexpexception",
                "commons.collections",
                "excludedpackagenames",
                "forclosure",
                "whileclosure",
                "jdbcrowsetimpl",
                "lazymap",
                "transformedmap",
                "memberaccess",
                "priorityqueue",
                "processimpl",
                "unixprocess",
                "scriptenginemanager",
            ],
            r"\bjava\.lang\.(?:runtime|processbuilder|process\w*|unixprocess|class(?:loader)?|system|thread\s*(?:@|\.\s*(?:sleep|currentthread)\b)|reflect|invoke|module|object\b)|\bjava\.io\.(?:file(?:inputstream|outputstream|reader|writer|descriptor|s)?\b|objectinputstream|objectoutputstream|printwriter|bufferedreader|inputstreamreader|randomaccessfile)|\bjava\.net\.(?:urlclassloader|url|uri|socket|serversocket|inetaddress|http\w*)\b|\bjava\.nio\.(?:file|channels)\b|\bjava\.util\.(?:scanner|base64|zip|jar)\b|\bjava\.beans\.(?:xmldecoder|expression|statement|eventhandler)\b|\bjava\.rmi\.\w+|(?:^|[\x22'>=:\[,(])\s*java\.(?:lang|io|net|nio|util|beans|rmi)\.[\w$.]+\s*(?:$|[\x22'<,\])])|\bjava\s*\.\s*\w*(?:runtime|processbuilder|process|classloader|reflection|exec)\b|\b(?:runtime\s*\.\s*getruntime|getruntime\s*\(|processbuilder|processimpl|unixprocess)\b|\bclass\s*\.\s*(?:module|classloader|forname)\b|\bclass\s*\[\s*['\x22]?(?:module|classloader)\b|\bclass\.(?:module\.)?classloader\b|\b(?:invokertransformer|instantiatetransformer|chainedtransformer|constanttransformer|invokertransformer|templatesimpl|beancomparator|priorityqueue|lazymap|transformedmap|annotationinvocationhandler|badattributevalueexpexception|jdbcrowsetimpl|commons\.collections\d*|clonetransformer|forclosure|prototypeclonefactory|prototypeserializationfactory|instantiatefactory|whileclosure)\b|\b(?:ognlcontext|memberaccess|_memberaccess|ognlutil|excludedclasses|excludedpackagenames|allowstaticmethodaccess)\b|#context\[|@ognl|#_memberaccess|\bjavax\.(?:script|naming|management)\.\w+|\borg\.omg\.\w+|\bsun\.(?:misc|reflect|rmi)\.\w+|\bcom\.(?:sun|bea|tangosol|mchange|alibaba\.fastjson|fasterxml\.jackson\.databind)\.\w+|\borg\.(?:apache\.(?:commons\.collections|xalan|naming|tomcat\.dbcp|bcel|log4j)|springframework\.\w+|codehaus\.groovy|mozilla\.javascript|hibernate)\b|\bbsh\.interpreter\b|\bgroovy\.lang\b|\bnashorn\b|scriptenginemanager|\bt\(java\.lang",
        ),
    ),
    rule(
        "java-runtime-keyword",
        "Java injection: runtime or process keyword in a dotted name",
        Critical,
        1,
        FIELDS | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["runtime", "processbuilder", "classloader", "java.lang."],
            r"\b\w+\.(?:\w+\.)*(?:runtime|processbuilder|classloader)\b|\b(?:runtime|processbuilder)\.\w+|\bjava\.lang\.(?:process|system)\b|\bjava\.lang\.thread\s*(?:@|\.\s*(?:sleep|currentthread)\b)",
        ),
    ),
    rule(
        "java-serialized-object",
        "Java injection: serialized Java object",
        Critical,
        1,
        FIELDS | TargetKind::Body.bit(),
        &[UrlDecode],
        Test::Regex(
            &[
                "\u{ac}\u{ed}",
                "ro0ab",
                "rO0AB",
                "KztAA",
                "Cs7QA",
                "H4sIA",
                "\u{fffd}\u{fffd}\u{0}\u{5}",
                "aced0005",
                "ACED0005",
            ],
            r#"(?:^|[=\s"'\[,:])(?:rO0AB|KztAA|Cs7QA|H4sIAAAAAAAA)|\u{ac}\u{ed}\x00\x05|\u{fffd}\u{fffd}\x00\x05|(?:^|[=\s"'\[,:])(?:aced0005|ACED0005)[0-9a-fA-F]{8,}"#,
        ),
    ),
    rule(
        "java-script-upload",
        "Java injection: upload or request of a JSP file",
        Critical,
        1,
        TargetKind::FileName.bit() | HEADERS,
        LOWER,
        Test::Regex(
            &[".js", ". js"],
            r"\.\s*(?:jsp|jspx|jspf|jsw|jsv|jhtml)\s*(?:$|\.|;|\s)",
        ),
    ),
    rule(
        "java-spring-expression",
        "Java injection: Spring, EL or OGNL expression",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["{", "("],
            r"[$#%*@]\{\s*(?:t\s*\(|new\s+\w|\w+\s*\.\s*(?:getclass|class|forname|getruntime|exec|getmethod|invoke|newinstance)\b|#|\(|''\.|\s*\w+\s*\(\s*\))|\bt\s*\(\s*java\.|\.getclass\s*\(\s*\)\s*\.\s*(?:forname|getclassloader|getmethod)|\.getmethod\s*\(|\.invoke\s*\(|\.newinstance\s*\(|\bsetattribute\s*\(",
        ),
    ),
    // Log4Shell.
    every_header(rule(
            "log4shell-lookup",
            "Log4Shell JNDI or nested lookup",
            Critical,
            1,
            EVERYWHERE | TargetKind::HeaderName.bit(),
            TEXT,
            Test::Regex(
                &["${", "$%7b", "jndi"],
                r"\$\{\s*(?:jndi|j\W*n\W*d\W*i|.{0,40}?\$\{[^}]{0,40}[:-])|\$\{(?:[^}]{0,30}:)*[^}]{0,10}(?:ldaps?|rmi|dns|iiop|corba|nds|nis|http)\s*:\s*/|\$\{\s*(?:env|sys|java|lower|upper|date|ctx|main|bundle|spring|k8s|docker|web|log4j|marker|sd|map|jvmrunargs|event|base64|::-)\s*:",
            ),
    )),
    every_header(rule(
            "log4shell-jndi-url",
            "Log4Shell JNDI URL without braces",
            Critical,
            1,
            EVERYWHERE,
            TEXT,
            Test::Regex(
                &["jndi"],
                r"\bjndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:",
            ),
    )),
    // Node.js, prototype pollution and server-side template injection.
    rule(
        "node-prototype-pollution",
        "Prototype pollution through __proto__ or constructor.prototype",
        Critical,
        1,
        FIELDS | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["proto", "constructor"],
            r"__proto__|\bobject\s*\.\s*prototype\s*(?:\.\s*[\w$]+|\[[^\]]*\])\s*=[^=]|\bconstructor\s*(?:\.|\[\s*['\x22]?)\s*prototype\b|\[\s*['\x22]?constructor['\x22]?\s*\]|\bconstructor\s*\.\s*prototype",
        ),
    ),
    // The React Server Components (Flight) reply format resolves `$1:a:b`
    // as a path through chunk 1. A path that reaches `prototype`,
    // `constructor` or `__proto__` gets hold of built-in functions, as
    // public exploit payloads for React Server Components do.
    rule(
        "node-flight-prototype-reference",
        "Prototype access through a React Flight reference path",
        Critical,
        1,
        FIELDS | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["prototype", "constructor", "__proto__"],
            r"\$[0-9a-f@]{0,8}:(?:[\w$]+:)*(?:prototype|constructor|__proto__)\b",
        ),
    ),
    rule(
        "node-code-execution",
        "Node.js injection: child_process, require or process access",
        Critical,
        1,
        FIELDS | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &[
                "process",
                "require",
                "child_",
                "function",
                "eval",
                "settimeout",
                "setinterval",
                "this",
                "global",
                "module",
                "console",
                "while",
                "for",
                "buffer",
                "fromcharcode",
                "import(",
                "exec",
                "fork",
                "spawn",
                "import",
            ],
            r"\bprocess\s*(?:\.|\[)\s*['\x22]?(?:mainmodule|binding|env|exit|kill|dlopen|getbuiltinmodule|_linkedbinding|stdout|cwd)|\brequire\s*\(\s*['\x22`](?:child_process|fs|net|http|vm|os|dns)|\bchild_process\b|\b(?:exec|execsync|spawn|spawnsync|execfile|fork)\s*\(\s*['\x22`]|\bnew\s+function\s*\(|\bfunction\s*\(\s*\)\s*\{\s*return\s+(?:this|process|global)|\beval\s*\(\s*(?:atob|buffer|string\.fromcharcode|unescape|decodeuri)|\bglobal(?:this)?\s*(?:\.|\[)\s*['\x22]?(?:process|require|eval)|\bmodule\s*\.\s*(?:constructor|require|children)|\bimport\s*\(\s*['\x22`](?:child_process|fs|vm)|\bconsole\s*\.\s*(?:info|warn|error|debug|dir)\s*\(|\bwhile\s*\(+\s*[!+\-~]*\s*(?:true|\d+|!0|!!\[\]|!!``|\[\]|infinity|!?false)\s*\)|\bfor\s*\(\s*;\s*;\s*\)|\bstring\s*\.\s*fromcharcode\s*\(|\bbuffer\s*\.\s*from\s*\(|\bsettimeout\s*\(\s*['\x22`]|\bsetinterval\s*\(\s*['\x22`]",
        ),
    ),
    rule(
        "ssti-template-expression",
        "Server-side template injection",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["{{", "{%", "${", "#{", "<%", "@{", "*{", "@("],
            r"\{\{\s*[^}]*(?:\d\s*[*+/-]\s*\d|__\w+__|\bconfig\b|\bself\b|\brequest\b|\bcycler\b|\blipsum\b|\bjoiner\b|\bnamespace\b|\bget_flashed_messages\b|\burl_for\b|\.__class__|\|\s*attr|\[\s*['\x22]_)|\{%\s*(?:if|for|set|import|include|extends|macro|block|raw|debug|print|load|with|autoescape|filter|call)\b|#\{\s*[^}]*(?:\d\s*[*+/-]\s*\d|\.\w+\s*\(|`|%x|system|exec|require)|\$\{\s*\d+\s*[*+/-]\s*\d+\s*\}|<%=?\s*(?:\d|system|exec|`|require|process|request|response|out\.|eval|if\b|for\b|each\b|end\b|while\b|import\b|include\b)|@\{\s*\[|@\(\s*(?:system|exec)|\*\{\s*t\s*\(|\{\{\s*['\x22]?\s*\d+\s*['\x22]?\s*\*\s*['\x22]?\d+",
        ),
    ),
    // FreeMarker's `?new` built-in creates an object of any class that
    // implements TemplateModel, and `Execute` among them runs a command.
    rule(
        "ssti-freemarker-new",
        "Server-side template injection: FreeMarker ?new built-in or utility class",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["freemarker", "?new"],
            r#"freemarker\.template\.utility\.\w+|['"]\s*\?new\s*\("#,
        ),
    ),
    // Twig: the environment object reached through `_self`, and the filters
    // that take a callable, given the name of a PHP command function.
    rule(
        "ssti-twig-callback",
        "Server-side template injection: Twig environment or a filter that calls a command",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["_self", "|"],
            r#"\b_self\s*\.\s*env\s*\.\s*(?:registerundefinedfiltercallback|getfilter|setcache|loadtemplate)\b|\|\s*(?:filter|map|reduce|sort)\s*\(\s*['"](?:system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|assert|file_put_contents)['"]"#,
        ),
    ),
    rule(
        "python-code-injection",
        "Python code injection: import call or object internals",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["__"],
            r"\b__(?:import__\s*\(|subclasses__\s*\(|builtins__\b|globals__\b)|\.__class__\s*\.\s*__(?:bases?|mro)__",
        ),
    ),
    // A pickle names the function it calls as module and name: after `c`
    // on two lines in protocols 0 and 1, as short strings with binary
    // framing in protocol 2 and later. Applications take pickles from
    // arguments and cookies, which `base64-encoded-attack` decodes too.
    rule(
        "python-pickle-call",
        "Python pickle that calls a command",
        Critical,
        1,
        ARGS | TargetKind::CookieValue.bit(),
        BASE64,
        Test::Regex(
            &["system", "popen", "check_output", "getoutput", "call", "run", "exec", "eval"],
            r"(?:^|[\n(\x{fffd}])c(?:os|posix|nt|subprocess|builtins|__builtin__)\n(?:system|popen|check_output|call|run|getoutput|exec|eval)\n|(?:os|posix|nt|subprocess|builtins)[\x00-\x1f\x{fffd}]{1,4}(?:system|popen|check_output|call|run|getoutput|exec|eval)\b",
        ),
    ),
    // JDBC URLs that a data source test connects to: H2 runs the script of
    // `INIT`, and the MySQL driver deserialises server data or loads local
    // files when these options are on.
    rule(
        "java-jdbc-url-attack",
        "JDBC URL with an option that runs code or reads files",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["jdbc:"],
            r"\bjdbc:[\w:]+.*?(?:\binit\s*=\s*(?:runscript|create\s+(?:alias|trigger))\b|\bautodeserialize\s*=\s*true\b|\bqueryinterceptors\s*=|\ballowloadlocalinfile\s*=\s*true\b|\ballowurlinlocalinfile\s*=\s*true\b|\bsocketfactory\s*=)",
        ),
    ),
    // Razor and other .NET template or expression injection reaches a
    // shell through the Process class.
    rule(
        "dotnet-process-start",
        ".NET code injection: starting a process",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["diagnostics", "process"],
            r#"\bsystem\s*\.\s*diagnostics\s*\.\s*process(?:startinfo)?\b|\bprocess\s*\.\s*start\s*\(\s*['"@]*\s*(?:cmd|powershell|pwsh|/bin/|bash|sh\b)"#,
        ),
    ),
    rule(
        "perl-ruby-injection",
        "Perl or Ruby code injection",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &[
                "core::",
                "@{",
                "process",
                "kernel",
                "system",
                "io.",
                "open3",
                "%x",
                "instance_eval",
                "class_eval",
                "send(",
                "const_get",
                "module_eval",
                "public_send",
                "instance_variable_get",
                ".send",
            ],
            r"@\{\s*\[\s*(?:core::|system|exec|`|qx|open)|\bcore::(?:global::)?(?:system|exec|readpipe|open|eval)|\bprocess\s*\.\s*(?:spawn|exec|fork)\s*\(|\bkernel\s*\.\s*(?:system|exec|spawn|open|`|eval|fork)\b|\bio\s*\.\s*(?:popen|read|readlines|sysopen|write)\s*\(|\bopen3\s*\.\s*\w+|%x\s*[\[({|]|\b(?:instance_eval|class_eval|module_eval|instance_variable_get|const_get|public_send)\s*\(|\.send\s*\(\s*:\s*(?:system|eval|exec)|\bsystem\s*\(\s*['\x22](?:id|ls|cat|whoami|uname)",
        ),
    ),
    // XML external entities: a document type declaration in request data
    // that makes the application's XML parser read a file or a URL, or expand
    // entities into each other until memory runs out.
    rule(
        "xxe-external-entity",
        "XML external entity or external DTD",
        Critical,
        1,
        EVERYWHERE,
        TEXT,
        Test::Regex(
            &["<!entity", "<!doctype", "xinclude", "xi:include"],
            r#"<!entity\s+(?:%\s*)?[^\s>]+\s+(?:system|public)\b|<!entity\s+%|<!doctype\s+[^\s>\[]+\s+(?:system|public)\b|<xi:include\b|xmlns:\w+\s*=\s*['"]https?://www\.w3\.org/2001/xinclude"#,
        ),
    ),
    rule(
        "xxe-entity-expansion",
        "XML entity that expands other entities",
        Critical,
        1,
        EVERYWHERE,
        TEXT,
        Test::Regex(
            &["<!entity"],
            r#"<!entity\s+[^\s>]+\s+(?:"[^"]*&[\w.:-]+;|'[^']*&[\w.:-]+;)"#,
        ),
    ),
    rule(
        "xxe-entity-declaration",
        "XML entity declaration in request data",
        Critical,
        2,
        EVERYWHERE,
        TEXT,
        Test::Regex(&["<!entity"], r"<!entity\s"),
    ),
    // Server-side request forgery to cloud metadata and internal services.
    rule(
        "ssrf-metadata",
        "Server-side request forgery to a cloud metadata or internal address",
        Critical,
        1,
        ARG_VALUES
            | TargetKind::CookieValue.bit()
            | TargetKind::Body.bit()
            | TargetKind::Path.bit(),
        TEXT,
        Test::Regex(
            &[
                "169.254",
                "metadata",
                "fd00:ec2",
                "2852039166",
                "0xa9fe",
                "0xa9.",
                "0251.",
                "[::ffff:",
                "100.100.100.200",
                "localtest",
                "docker.internal",
                "kubernetes",
                "instance-data",
                "alibaba",
                "0177.",
                "2130706433",
                "0x7f",
                "[::]",
                "127.1",
                "0.0.0.0",
                "nip.io",
                "sslip.io",
                "xip.io",
                "rbndr.us",
                "ipv6-localhost",
                "localhost",
                "[::1]",
                "ip6-",
                "192.0.0.192",
                ".lvh.me",
                "/latest/",
                "/openstack/",
                "[0:0:0:0:0:0:0:1]",
                "0x7f000001",
            ],
            r"(?:^|[/\\@\s=]|\w+://)(?:169\.254\.169\.254|169\.254\.170\.2|metadata\.google\.internal|metadata\.goog|metadata\.azure\.com|instance-data(?:\.ec2\.internal)?|100\.100\.100\.200|192\.0\.0\.192|\[?fd00:ec2::254\]?|2852039166|0xa9fea9fe|0xa9\.0xfe\.0xa9\.0xfe|0251\.0376\.0251\.0376|\[::ffff:(?:a9fe:a9fe|169\.254\.169\.254)\]|host\.docker\.internal|gateway\.docker\.internal|kubernetes\.default(?:\.svc)?|ipv6-localhost|ip6-localhost|ip6-loopback)|(?:://|@)(?:[\w.-]*\.(?:nip\.io|sslip\.io|xip\.io|rbndr\.us|localtest\.me|lvh\.me)|2130706433|0x7f000001|0177\.0+\.0+\.0*1|127\.1|0\.0\.0\.0|\[::\]|\[::1\]|\[0:0:0:0:0:0:0:1\]|\[::ffff:7f00:1\]|\[::ffff:127\.0\.0\.1\]|localhost(?:\.localdomain)?)(?:[:/?#]|$)|/(?:latest/(?:meta-data|user-data|api/token|dynamic)|computemetadata/v1|metadata/(?:instance|identity)|openstack/latest)",
        ),
    ),
    rule(
        "ssrf-obfuscated-ip",
        "Server-side request forgery with an obfuscated IP address",
        Critical,
        2,
        ARG_VALUES,
        TEXT,
        Test::Regex(
            &["://"],
            r"://(?:\d{8,10}|0x[0-9a-f]{8}|(?:0x[0-9a-f]{1,2}\.){3}0x[0-9a-f]{1,2}|(?:0\d{1,3}\.){3}0\d{1,3}|\[[0-9a-f:.]+\])(?:[:/]|$)",
        ),
    ),
    // Address parsers in C libraries, browsers and many URL libraries read
    // these forms as IPv4 addresses, while address lists in rules and
    // allow-lists see a plain dotted quad.
    rule(
        "ssrf-numeric-host",
        "Server-side request forgery to an IPv4 host written in octal, in hexadecimal, as one number or with fewer than four parts",
        Critical,
        1,
        ARG_VALUES | TargetKind::CookieValue.bit(),
        TEXT,
        Test::Regex(
            &["://", ":\\\\", ":/\\", ":\\/"],
            r"[a-z]:[/\\]{2}(?:[^/\\@?#\s]*@)?(?:0|0x0*[0-9a-f]{1,8}|0+[0-7]{1,11}|\d{8,10}|\d{1,3}\.\d{1,8}|\d{1,3}\.\d{1,3}\.\d{1,5}|(?:(?:\d{1,3}|0x0*[0-9a-f]{1,2})\.){0,3}(?:0x0*[0-9a-f]{1,2}|0+[0-7]{1,3})(?:\.(?:\d{1,10}|0x0*[0-9a-f]{1,8}|0+[0-7]{1,11})){0,3})(?:[:/?#\\]|$)",
        ),
    ),
    // Cross-site scripting.
    rule(
        "xss-script-tag",
        "Cross-site scripting with a script tag",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(&["script"], r"<\s*/?\s*script\b"),
    ),
    rule(
        "xss-event-handler",
        "Cross-site scripting with an event handler attribute",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["on"],
            r#"(?:<[^>]*?|["'`\s/;]|^)on(?:abort|activate|afterprint|animation\w+|auxclick|before\w+|begin|blur|bounce|canplay\w*|change|click|close|contextmenu|copy|cuechange|cut|dblclick|drag\w*|drop|durationchange|end|ended|error|finish|focus\w*|formdata|hashchange|input|invalid|key\w+|load\w*|message|mouse\w+|offline|online|page\w+|paste|pause|play\w*|pointer\w+|popstate|progress|readystatechange|repeat|reset|resize|scroll\w*|search|seek\w+|select\w*|show|start|storage|submit|suspend|timeupdate|toggle|touch\w+|transition\w+|unload|volumechange|waiting|wheel|zoom)\s*=\s*(?:[^\s>]|$)"#,
        ),
    ),
    rule(
        "xss-javascript-uri",
        "Cross-site scripting with a javascript: or vbscript: URI",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["script", "data:", "livescript", "mocha"],
            r#"(?:java|vb|live|ecma)script\s*:\s*(?:[\w.$\[\]]+\s*[(=`]|[/'"(\[!~+\\-]|\w+\s*\.)|\bmocha\s*:|data\s*:\s*(?:text/html|image/svg\+xml|application/(?:x-)?javascript|text/javascript)\b"#,
        ),
    ),
    // Browsers remove tabs and line breaks anywhere in a URL, so
    // `jav&#x09;ascript:` runs as `javascript:`. The chain of the rule above
    // turns them into spaces, which browsers keep, so this one reads the
    // value before whitespace compression.
    rule(
        "xss-javascript-uri-split",
        "Cross-site scripting with a javascript: or vbscript: URI split by tabs or line breaks",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["\t", "\n", "\r"],
            r#"(?:j[\t\n\r]*a[\t\n\r]*v[\t\n\r]*a|v[\t\n\r]*b)[\t\n\r]*s[\t\n\r]*c[\t\n\r]*r[\t\n\r]*i[\t\n\r]*p[\t\n\r]*t[\t\n\r]*:\s*(?:[\w.$\[\]]+\s*[(=`]|[/'"(\[!~+\\-]|\w+\s*\.)"#,
        ),
    ),
    // `details` and `dialog` run script only through an event handler,
    // which `xss-event-handler` catches, and pages use them bare.
    rule(
        "xss-dangerous-tag",
        "Cross-site scripting with an embedding or active tag",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["<"],
            r"<\s*/?\s*(?:iframe|frame|frameset|object|embed|applet|svg|math|meta|base|link|style|form|isindex|marquee|xss|xml|vmlframe|:vmlframe|v:\w+|img\s+dynsrc|img\s+lowsrc|image|video|audio|source|body|html|bgsound|layer|ilayer|blink|import|template|portal|animate|set|handler|listener|input\s+[^>]*autofocus|textarea\s+[^>]*autofocus|a\s+href\s*=\s*['\x22]?\s*(?:javascript|data|vbscript)|\?import|\?xml-stylesheet)\b",
        ),
    ),
    rule(
        "xss-script-api",
        "Cross-site scripting: script API call or DOM access",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &[
                "(",
                "`",
                "document",
                "window",
                "location",
                "innerhtml",
                "outerhtml",
                "srcdoc",
                "textcontent",
                "fromcharcode",
                "xmlhttprequest",
                "insertadjacenthtml",
                "frames[",
                "globalthis[",
                "parent[",
                "self[",
                "top[",
            ],
            r"\b(?:document|window)\s*\)?\s*\[\s*['\x22`]\w+['\x22`]\s*\]|\b(?:alert|confirm|prompt|eval|settimeout|setinterval|atob|btoa|unescape|execscript|msgbox|showmodaldialog)\s*(?:\(\s*[^)\s]|`|\.\s*(?:call|apply|bind)\s*\()|^\s*(?:alert|confirm|prompt|eval|atob|btoa|unescape|execscript|msgbox|showmodaldialog)\s*\(\s*\)\s*;?\s*$|\bdocument\s*\.\s*(?:cookie|domain|write(?:ln)?|location|body|createelement|forms|images|links|scripts|referrer|url|documentelement)\b|\bwindow\s*\.\s*(?:location|open|name|eval|onerror)\b|\b(?:top|parent|self|frames|globalthis)\s*\[\s*['\x22`]|\blocation\s*\.\s*(?:href|hash|replace|assign)\b|\.(?:innerhtml|outerhtml|insertadjacenthtml|srcdoc)\s*=|\bstring\s*\.\s*fromcharcode\b|\bnew\s+xmlhttprequest\b|\bxmlhttprequest\s*[.(]|\bnew\s+image\s*\(|\.textcontent\s*=\s*['\x22`]",
        ),
    ),
    rule(
        "xss-css-expression",
        "Cross-site scripting through CSS expression, behavior or import",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["expression", "behavior", "-moz-binding", "@import", "url("],
            r"\bexpression\s*\(|\bbehavior\s*:|-moz-binding\s*:|@import\s*['\x22(]|\burl\s*\(\s*['\x22]?\s*(?:javascript|vbscript|data):",
        ),
    ),
    rule(
        "xss-libinjection",
        "Cross-site scripting found by the libinjection HTML5 tokenizer",
        Critical,
        1,
        FIELDS & !(TargetKind::HeaderValue.bit()),
        FILE,
        Test::Xss,
    ),
    rule(
        "xss-utf7",
        "Cross-site scripting in UTF-7",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(&["+ad"], r"\+ad[w4][-a-z0-9+/]*"),
    ),
    rule(
        "xss-attribute-break",
        "Cross-site scripting: quote followed by a new attribute or tag",
        Critical,
        2,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["\"", "'"],
            r#"['"]\s*(?:/?>\s*<\s*[a-z]|\s+(?:src|href|style|formaction|action|srcdoc|xlink:href)\s*=)"#,
        ),
    ),
    // SQL injection.
    rule(
        "sqli-libinjection",
        "SQL injection found by the libinjection tokenizer",
        Critical,
        1,
        ARGS | TargetKind::CookieValue.bit() | TargetKind::Path.bit(),
        &[UrlDecode, Utf8Fold, HtmlEntities, RemoveNul],
        Test::Sqli,
    ),
    rule(
        "sqli-union-select",
        "SQL injection with UNION SELECT",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["union"],
            r"\bunion\b(?:\s|\(|\+)*(?:all|distinct|distinctrow)?(?:\s|\()*select\b|union\s*select|(?:^|[\d'\x22`)])\s*union\s+(?:all\s+|distinct\s+)?(?:table\s+[\w`.]+|values\s+row\s*\()",
        ),
    ),
    // A quote before a comment counts only when it is an odd-numbered
    // quote of its kind, as for `sqli-auth-bypass` below: in
    // `she said "hi" -- then left` the quotes pair up.
    rule(
        "sqli-tautology",
        "SQL injection with a tautology or a comment after a quote",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &[
                "'", "\"", "`", "or", "and", "||", "&&", "\u{2019}", "\u{b4}",
            ],
            r#"['"`’´]\s*\)*\s*(?:or|and|xor|\|\||&&|div|rlike|regexp|like|sounds\s+like)\b\s*\(*\s*(?:['"`’´][\w.-]*['"`’´]|[\w.-]+)\s*(?:[=<>!]|<>|!=|\blike\b|\bis\b|\bin\b|\bbetween\b|\bregexp\b|\brlike\b)|(?:^[^']*(?:'[^']*'[^']*)*'|^[^"]*(?:"[^"]*"[^"]*)*"|^[^`]*(?:`[^`]*`[^`]*)*`|[’´])\s*\)*\s*(?:--(?:\s|$)|#\s*$|/\*|;\s*(?:--|#))|['"’´]\s*\)*\s*;\s*$|\b(?:or|and)\s+(?:0x[0-9a-f]+|\d+|[xbn]?'[^']*'|"[^"]*"|true|false|null)\s*(?:=|<=>|<>|!=|>=|<=|>|<|\blike\b|\bis\b)\s*(?:0x[0-9a-f]+|\d+|[xbn]?'[^']*'|"[^"]*"|true|false|null)|['"`’´]\s*(?:or|and|\|\||&&)\s*(?:not\s+)?(?:true|false|null|\d+|\w+\s*\()|\b(?:or|and|\|\||&&)\s+(?:not\s+)?(?:(?:exists|isnull|ifnull)\s*\(|(?:ascii|substr\w*|char|length|sleep|benchmark|if)\s*\(\s*(?:[\d'"@(-]|select\b|\w+\s*\())"#,
        ),
    ),
    rule(
        "sqli-keyword-sequence",
        "SQL injection: statement keywords in SQL order",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &[
                "select",
                "insert",
                "update",
                "delete",
                "drop",
                "create",
                "alter",
                "truncate",
                "exec",
                "declare",
                "load_file",
                "outfile",
                "dumpfile",
                "replace",
                "merge",
                "shutdown",
                "grant",
                "rename",
                "handler",
                "call",
                "show",
                "describe",
                "desc ",
                "against",
                "infile",
                "returns",
                "values",
            ],
            r"\bselect\s+(?:\*|@@\w+|\w+\s*\(|null\b|count\s*\(|top\s+\d|distinct\b|concat|group_concat|char\s*\(|version\s*\(|user\s*\(|database\s*\(|\d+\s*,\s*\d+|if\s*\(|case\b|substring|sleep|benchmark|extractvalue|updatexml|load_file)|\binsert\s+(?:ignore\s+)?into\s+[\w`.\x22\[\]]+\s*(?:\(|values\b|select\b|set\b|default\b)|[;'\x22`)]\s*insert\s+(?:ignore\s+)?into\b|[;'\x22`)]\s*update\s+[\w`.\x22\[\]]+\s+set\b|\bdelete\s+from\s+[\w`\x22.\[\]]+\s*(?:where\b|;|--|#)|[;'\x22`)]\s*delete\s+from\s+[\w`\x22.\[\]]+\s*$|[;'\x22`)]\s*(?:drop|create|alter|truncate|rename)\s+(?:table|database|schema|view|index|procedure|function|trigger|user|column|definer|or\s+replace)\b|\b(?:drop|create|alter|truncate|rename)\s+(?:table|database|schema|view|index|procedure|function|trigger|user|column|definer|or\s+replace)\s+(?:if\s+(?:not\s+)?exists\s+)?(?:[`\x22\[]|[\w.]+\s*(?:;\s*(?:$|--|#)|--|#|/\*))|\bexec(?:ute)?\s*(?:\(|\s+(?:master|xp_|sp_|immediate|@))|\bdeclare\s+@\w+|\bload_file\s*\(|\binto\s+(?:out|dump)file\b|\breplace\s+into\b|\bmerge\s+into\b|\bshutdown\s+with\s+nowait|\bgrant\s+(?:all|select|insert|update|delete)\b|\bhandler\s+\w+\s+open\b|\bshow\s+(?:tables|databases|columns|grants|variables|processlist|create)\b|\b(?:describe|desc)\s+[\w`.]+\s*(?:$|;|--|#)|\bcall\s+[\w.]+\(|\bmatch\s*\([^()]{1,100}\)\s*against\s*\(|\bload\s+data\s+(?:local\s+)?infile\b|\bvalues\s*\(\s*(?:'[^']*'|\d+|null)\s*,\s*(?:'[^']*'|\d+|null)\s*[,)]|\bcreate\s+(?:or\s+replace\s+)?(?:aggregate\s+)?function\s+[\w.`]+\s+returns\b",
        ),
    ),
    rule(
        "sqli-select-from",
        "SQL injection: SELECT ... FROM statement",
        Medium,
        1,
        FIELDS,
        SQL,
        Test::Regex(&["select"], r"\bselect\b.{0,200}?\bfrom\b\s*[\w`\x22'\[(]"),
    ),
    // `sleep` counts with a number, string, variable, subquery or call as its
    // argument, and `benchmark` with a comma, so that searches such as
    // `sleep(8 hours)` and `benchmark(s)` pass. The geometry functions and
    // `exp` count with a nested expression, as in error-based probes.
    rule(
        "sqli-function",
        "SQL injection: database function or system object",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &[
                "(",
                "@@",
                "information_schema",
                "sys",
                "pg_",
                "mysql.",
                "xp_",
                "sp_",
                "dual",
                "master..",
                "all_",
                "dba_",
                "v$",
                "msdb",
                "utl_",
                "dbms_",
                "waitfor",
                "sqlite_",
                "lo_import",
                "lo_export",
                "dblink",
                "xmltype",
                "openrowset",
                "opendatasource",
                "openquery",
                "user_tables",
                "user_tab_columns",
            ],
            r"\bsleep\s*\(\s*(?:(?:0x[0-9a-f]+|[\d.]+)\s*(?:[),*/+-]|\.|$)|['\x22@(]|\w+\s*\(|select\b)|\bbenchmark\s*\([^),]*,|\b(?:exp|geometrycollection|multipoint|polygon|linestring|multilinestring|multipolygon)\s*\(\s*(?:[(~]|select\b)|\b(?:extractvalue|updatexml|load_file|group_concat|concat_ws|make_set|elt|name_const|json_keys|gtid_subset|st_latfromgeohash|randomblob|sqlite_version|unhex|from_base64|to_base64)\s*\(|\b(?:pg_sleep|pg_read_file|pg_ls_dir|lo_import|lo_export|dblink|utl_http\.request|utl_inaddr\.\w+|dbms_pipe\.receive_message|dbms_\w+\.\w+|ctxsys\.\w+|xmltype|openrowset|opendatasource|openquery|xp_cmdshell|xp_dirtree|xp_regread|sp_executesql|sp_oacreate|sp_password|sp_makewebtask|sys_eval|sys_exec|master\.\.\w+|char\s*\(\s*\d+\s*(?:,\s*\d+\s*)+\)|chr\s*\(\s*\d+\s*\)\s*\|\||hex\s*\(\s*(?:version|user|database)|version\s*\(\s*\)|database\s*\(\s*\)|current_user\s*\(|session_user\s*\(|system_user\s*\(|schema\s*\(\s*\)|user\s*\(\s*\)|last_insert_id\s*\(|row_count\s*\(|found_rows\s*\(|connection_id\s*\(|uuid\s*\(\s*\)|iif\s*\(|ifnull\s*\(|nullif\s*\(|isnull\s*\(|coalesce\s*\(|cast\s*\(.{0,60}?\bas\s+\w+|convert\s*\(.{0,60}?\busing\b|substr(?:ing)?\s*\(\s*(?:@@|\(?select|version|user|database|current_user|password|table_name|column_name)|ascii\s*\(\s*(?:substr|mid|\(?select)|mid\s*\(\s*(?:@@|\(?select|version|user|database)|length\s*\(\s*(?:@@|\(?select|database|user|version))\s*\(?|@@(?:version|datadir|hostname|basedir|tmpdir|servername|global|session|identity|spid|language|microsoftversion|rowcount)\b|\binformation_schema\b|\b(?:mysql\.(?:user|db|host)|sys\.(?:objects|tables|columns|databases|sysobjects|user_summary|schema_\w+|x\$\w+)|sysobjects|syscolumns|sysdatabases|pg_(?:catalog|class|tables|user|shadow|database|namespace|proc|stat_activity)|all_tables|all_tab_columns|user_tables|user_tab_columns|dba_users|dba_tables|v\$version|msdb\.\w+|sqlite_master|sqlite_schema|sqlite_temp_master)\b|\bfrom\s+dual\b|\bwaitfor[\s+]+(?:delay|time)[\s+]+'",
        ),
    ),
    rule(
        "sqli-stacked-query",
        "SQL injection with a stacked query",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &[";"],
            r#"(?:^\s*|['")\d=]\s*);\s*(?:select|insert|update|delete|drop|create|alter|truncate|exec|execute|declare|shutdown|waitfor|set\s+@|grant|revoke|begin|commit|rollback|call|load|copy|handler)\b|(?:^\s*|['")\d=]\s*);\s*use\s+[\w`\[\]]+\s*(?:;|--|#|$)"#,
        ),
    ),
    // The arithmetic branch takes `'-'`, `1'-1-'` and `'+sleep(1)+'`, but not
    // a quoted signed number such as `'-1'`, which consent cookies and
    // JavaScript-style values hold and which is no useful injection.
    rule(
        "sqli-operator-after-quote",
        "SQL injection: quote followed by an SQL operator or clause",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["'", "\"", "`"],
            r#"(?:^[^']*(?:'[^']*'[^']*)*'|^[^"]*(?:"[^"]*"[^"]*)*"|^[^`]*(?:`[^`]*`[^`]*)*`)\s*(?:\)\s*)*(?:\|\||&&|\bdiv\b|\bmod\b|\bxor\b|\bregexp\b|\brlike\b|\bsounds\s+like\b|<=>|\bnot\s+between\b|\bbetween\b.{1,40}\band\b|\bis\s+(?:not\s+)?null\b|\bin\s*\(|\border\s+by\b|\bgroup\s+by\b|\bhaving\b|\blimit\s+\d|\bprocedure\s+analyse|\binto\s+@|\bcollate\b|\bescape\b|=\s*['"`(])|(?:^[^']*(?:'[^']*'[^']*)*'|^[^"]*(?:"[^"]*"[^"]*)*")['"`]*\s*(?:\)\s*)*[-+*/%^|&]\s*(?:['"`(@]|\d[\d.]*\s*(?:[^\d.\s'"`]|$))"#,
        ),
    ),
    rule(
        "sqli-comment-evasion",
        "SQL injection: comment or version comment inside a statement",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["/*", "--", "#"],
            r#"/\*!\d*|\w/\*\*/\w|/\*.*?\*/\s*(?:select|union|and|or|from|where|table|into|values)\b|\b(?:select|union|and|or|from|where|order|group|insert|update|delete|drop|alter|create|truncate|declare|exec|execute|table|into|in|values|having|like)\s*/\*|^\s*(?:--|#)\s*$|(?:^[^']*(?:'[^']*'[^']*)*'|^[^"]*(?:"[^"]*"[^"]*)*")\s*(?:(?:--|#)\s*$|--[\s+-])|;\s*--\s*$"#,
        ),
    ),
    rule(
        "sqli-order-by-probe",
        "SQL injection: ORDER BY, GROUP BY or HAVING probe",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["order", "group", "having", "procedure", "limit"],
            r#"(?:^|['")\d\s])\s*(?:order|group)\s+by\s+(?:\d+\b|\w+\s*(?:--|#|/\*|;\s*(?:--|#)|\())|(?:['")]|\d)\s*(?:order|group)\s+by\s+\w+\s*$|\bhaving\s+(?:\d+|'[^']{1,40}'|`[^`]{1,64}`)\s*(?:[<>=]|!=)|\bhaving\s+(?:count|sum|avg|min|max)\s*\([^)]*\)\s*(?:[<>=!]|\bis\b|\bin\b|\bbetween\b|\blike\b)|\bprocedure\s+analyse\s*\(|\blimit\s+\d+\s*,\s*\d+\s*(?:--|#|;|$)|\blimit\s+\d+\s+into\b"#,
        ),
    ),
    // A quote before `or` or `and` counts when it is an odd-numbered quote
    // of its kind in the value: it ends the string that the application
    // opened. In `"red" or "blue"` the quotes pair up inside the string.
    // The same holds for an account name with a quote that ends the value,
    // as in `admin '`, while `role = 'admin'` passes.
    rule(
        "sqli-auth-bypass",
        "SQL injection: login bypass or boolean probe",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["'", "\"", "`", "or", "and", "xor", "||", "&&", "null"],
            r#"^\s*['"`]\s*(?:=|\)|;|\||&|or\b|and\b|$)|['"`]\s*=\s*['"`]|^[^']*(?:'[^']*'[^']*)*\b(?:admin|administrator|root|user|test)\s*'\s*(?:$|--|#|/\*|\)|;|or\b|and\b)|^[^"]*(?:"[^"]*"[^"]*)*\b(?:admin|administrator|root|user|test)\s*"\s*(?:$|--|#|/\*|\)|;|or\b|and\b)|^[^`]*(?:`[^`]*`[^`]*)*\b(?:admin|administrator|root|user|test)\s*`\s*(?:--|#|/\*|\)|;|or\b|and\b)|^\s*-?\d+\s*['"`]?\s*\)*\s*(?:or|and|xor|\|\||&&)\s+(?:[\w.]+\s*(?:[<>=!]|[-+*/%^|&])|true\b|false\b|not\b|null\b|[\w.]+\s*\(|\(|\[\w+\]\s*(?:[<>=!]|[-+*/%^|&])|['"`@])|^\s*\)\s*(?:or|and)\b|\bis\s+not\s+null\b|\b(?:or|and)\s+['"`]?\w+['"`]?\s+(?:like|regexp|rlike)\s+['"`]|\b(?:or|and)(?:\s+\(?|\s*\()\s*\d+\s*[<>=!]{1,2}\s*\d+|^[^']*(?:'[^']*'[^']*)*'\s*(?:or|and)\s+['"`]?\w|^[^"]*(?:"[^"]*"[^"]*)*"\s*(?:or|and)\s+['"`]?\w|^[^`]*(?:`[^`]*`[^`]*)*`\s*(?:or|and)\s+['"`]?\w|\b(?:true|false)\s*(?:and|or|xor)\s*['"`(]"#,
        ),
    ),
    rule(
        "sqli-hex-char-encoding",
        "SQL injection: hex strings, char() chains or concatenation",
        Critical,
        2,
        FIELDS,
        SQL,
        Test::Regex(
            &["0x", "char", "concat", "||", "+"],
            r#"\b0x[0-9a-f]{8,}\b|\bchar\s*\(\s*\d+|\bconcat\s*\(|['"]\s*\|\|\s*['"(]|['"]\s*\+\s*['"(]"#,
        ),
    ),
    // Command injection: shell syntax that ordinary text does not contain.
    rule(
        "cmdi-shell-function",
        "Command injection: shell function definition, Shellshock or fork bomb",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["(", ")"],
            r"(?:^|[;&|\n])\s*[\w:.-]*\s*\(\s*\)\s*\{|\(\s*\)\s*\{\s*:?\s*;\s*\}",
        ),
    ),
    rule(
        "cmdi-shell-builtin",
        "Command injection: shell -c, alias, variable execution or CLI dot command",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["sh", "alias", "$", "."],
            r"\b(?:ba|z|da|k|c|tc|a)?sh\s+-[a-z]*c\b|\balias\s+(?:[-+]\S*\s+)*[^\s=]+=|(?:^|[;&|\n])\s*[a-z_]\w*=\S*\s*[;&|\n]\s*\$\{?[a-z_]\w*|\$\{?(?:shell|bash|0|cmd|command)\}?\s+-[a-z]*c\b|(?:^|[;\n])\s*\.(?:shell|system)\b|[;\n]\s*\.(?:databases|tables|dump|load|import|output|once|read|open|cd)\b",
        ),
    ),
    rule(
        "cmdi-windows-batch",
        "Command injection: Windows batch IF or FOR statement",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::WordRegex(
            &["if", "for"],
            r#"(?:^|[&|;(])\s*if\s+(?:/i\s+)?(?:not\s+)?(?:defined\s+\w|exist\s+\S|errorlevel\s+\d|cmdextversion\s+\d|%[^%\s]+%\s+(?:equ|neq|lss|leq|gtr|geq)\s|"[^"]*"\s*==\s*"|\S+==\S+\s+(?:echo|set|goto|call|start|del|cmd|exit|copy|move|type|dir|rem)\b)|(?:^|[&|;(])\s*if\s+/i\s+\S+==\S|\bfor\s+(?:/[dflr]\s+(?:\S+\s+)?)?%%?~?\w+\s+in\s*\([^)]*\)\s*do\b"#,
        ),
    ),
    rule(
        "cmdi-mail-protocol",
        "Command injection: SMTP, IMAP or POP3 command after a line break",
        Critical,
        1,
        ARGS,
        TEXT,
        Test::Regex(
            &["\n", "\r"],
            r"[\r\n]\s*(?:mail\s+from\s*:|rcpt\s+to\s*:|helo\s+\S|ehlo\s+\S|vrfy\s+\S|expn\s+\S|auth\s+(?:login|plain|cram-md5)\b|starttls\s*$)|[\r\n]\s*[a-z]*\d+[a-z\d]*\s+(?:login|select|examine|fetch|uid\s+(?:fetch|store|copy|move)|store|append|logout|capability|list|lsub|delete|rename|authenticate)\b",
        ),
    ),
    // SQL injection: shapes of injected fragments.
    rule(
        "sqli-boolean-operator",
        "SQL injection: boolean operator and comparison after a quote or at the start",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::WordRegex(
            &["or", "and", "xor", "||", "&&"],
            r#"(?:^|['"`)=])\s*(?:or|and|xor|\|\||&&)\s+(?:not\s+)?(?:\d+|'[^']*'|"[^"]*"|[a-z_]\w*)\s*(?:[<>]=?|!=|<>|<=>|==?|\blike\b|\bregexp\b|\brlike\b|\bis\b|\bin\b)|^\s*(?:\d+|'[^']*')\s*(?:=|!=|<>|<=>)\s*(?:\d+|'[^']*')\s*$|^\s*\\['"]\s*\w*\s*(?:or|and|xor|union|select|having|\|\||&&)\b"#,
        ),
    ),
    rule(
        "sqli-unclosed-quote-keyword",
        "SQL injection: SQL keyword inside a quoted string that is never closed",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["'", "\"", "`"],
            r#"^[^']*(?:'[^']*'[^']*)*'\s*\)*\s*(?:union|alter|drop|truncate|waitfor|exec|declare|select|insert|update|delete|create|having|order\s+by|group\s+by)\b[^']*$|^[^"]*(?:"[^"]*"[^"]*)*"\s*\)*\s*(?:union|alter|drop|truncate|waitfor|exec|declare|select|insert|update|delete|create|having|order\s+by|group\s+by)\b[^"]*$|\w['"`][^'"`]{0,60}?--[\s-]*$|\w['"`](?:[^'"`]{0,59}[^'"`a-z])?#\s*$"#,
        ),
    ),
    rule(
        "sqli-statement-fragment",
        "SQL injection: statement fragment such as AS ... FROM, quoted table names, a cast of a system value or a set operator before SELECT",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::WordRegex(
            &[
                "as",
                "from",
                "select",
                "current_user",
                "session_user",
                "user",
                "current_database",
                "version",
                "except",
                "intersect",
                "minus",
            ],
            r#"(?:[;)`'"]|\d)\s*as\s+[`'"]?\w+[`'"]?\s+from\b|\bfrom\s+`[^`]+`|\b(?:current_user|session_user|user|current_database|version)(?:\(\))?\s*::\s*(?:text|varchar|char|name|int[248]?|integer|bigint|smallint|numeric|decimal|real|float[48]?|bool(?:ean)?|inet|bytea|regclass|json|jsonb|xml|date|timestamp)\b|\bselect\s+0x[0-9a-f]+|\b(?:except|intersect|minus)(?:\s+(?:all|distinct))?\s*\(?\s*select\b\s*(?:[\d.*(@'"`]|[a-z_]\w*\s*,)"#,
        ),
    ),
    rule(
        "sqli-operator-fragment",
        "SQL injection: PostgreSQL cast or JSON operator after a string, or a hex literal after a string",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["::", "@>", "<@", "?|", "?&", "->", "#>", "0x"],
            r#"(?:'|\))\s*::\s*[a-z]+\b|'\s*(?:@>|<@|\?\||\?&|#>>?|->>?)\s*'|\?\|\s*array\s*\[|['"]\s*,\s*0x[0-9a-f]+|\\0x[0-9a-f]"#,
        ),
    ),
    rule(
        "sqli-system-name",
        "SQL injection: database driver, package or system database name",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Words(&[
            "msdasql",
            "sqloledb",
            "msdb",
            "utl_http",
            "utl_inaddr",
            "utl_file",
            "utl_smtp",
            "utl_tcp",
            "dbms_xmlgen",
            "sysibm",
            "pg_shadow",
            "xp_cmdshell",
            "northwind",
            "msysobjects",
            "msysaccessobjects",
            "msysqueries",
            "msysrelationships",
            "msysaces",
            "pg_toast",
            "sysaux",
            "sqlite_temp_master",
            "adventureworks",
            "sakila",
            "tempdb",
            "performance_schema",
            "pg_authid",
            "pg_roles",
            "sqlite_sequence",
            "sysprocesses",
            "syslogins",
            "sysxlogins",
            "sysusers",
            "syscomments",
            "sysservers",
            "dbms_java",
            "dbms_lock",
            "dbms_scheduler",
            "dbms_xmlquery",
            "owa_util",
            // Extended and system stored procedures of SQL Server that run
            // commands, read files or the registry, or change logins.
            "xp_availablemedia",
            "xp_dirtree",
            "xp_enumdsn",
            "xp_enumgroups",
            "xp_execresultset",
            "xp_fileexist",
            "xp_fixeddrives",
            "xp_loginconfig",
            "xp_logininfo",
            "xp_makecab",
            "xp_msver",
            "xp_ntsec_enumdomains",
            "xp_regaddmultistring",
            "xp_regdeletekey",
            "xp_regdeletevalue",
            "xp_regenumkeys",
            "xp_regenumvalues",
            "xp_regremovemultistring",
            "xp_regwrite",
            "xp_servicecontrol",
            "xp_subdirs",
            "xp_terminate_process",
            "sp_addextendedproc",
            "sp_addlinkedserver",
            "sp_addlinkedsrvlogin",
            "sp_addlogin",
            "sp_addsrvrolemember",
            "sp_configure",
            "sp_dropextendedproc",
            "sp_msforeachdb",
            "sp_msforeachtable",
            "sp_oadestroy",
            "sp_oagetproperty",
            "sp_oamethod",
            "sp_oasetproperty",
            "sp_replwritetovarbin",
            "sp_start_job",
        ]),
    ),
    rule(
        "sqli-nosql-operator",
        "NoSQL injection: MongoDB query operator in an argument name or JSON key",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        TEXT,
        Test::Regex(
            &["$"],
            r"(?:^|\[)\s*\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|elemmatch|nor|or|and|not|expr|function|accumulator|all|size|mod|text|slice|jsonschema)\s*(?:\]|$)",
        ),
    ),
    // A value that closes a JavaScript string, calls a function inside an
    // arithmetic expression and opens the string again, as in `'-alert(1)-'`:
    // script that reflects the value into a string literal runs the call.
    rule(
        "xss-js-string-breakout",
        "Cross-site scripting: a function call that breaks out of a JavaScript string",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["'", "\"", "`"],
            r#"^\s*['"`]\s*[-+*/%^|&,;]\s*[\w$.]+\s*\([^)]{0,40}\)\s*(?:[-+*/%^|&,;]|//)"#,
        ),
    ),
    // Cross-site scripting: evasions of the tag and attribute rules.
    rule(
        "xss-obfuscated-script",
        "Cross-site scripting: JSFuck coercions, tagged template calls or a spaced-out scheme",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["[]", "`", "j", "reflect", "<"],
            r"!!\[\]|\(\s*!\[\][\s+]*\[\]\s*\)|\[[\s+]*![\s+]*\[\]\s*\]|\+\s*!\s*\+\s*\[\]|\b(?:call|apply|bind)\s*`|\[\]\s*\.\s*\w+\s*\.\s*(?:call|apply)\b|\breflect\s*\.\s*(?:apply|construct)\b|\$\{\s*(?:alert|eval|prompt|confirm)\s*\}|j\s+a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:|j\s*a\s+v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:|java\s+script\s*:|<\s*[a-z](?:\s[a-z]){2,}\b|(?:<[a-z]\w*[^>]*?[\s/]|['\x22`]\s*)on[a-z]{3,}\s*=(?:[^=]|$)|<\s*(?:noscript|plaintext|xmp|noembed|noframes|title|textarea|keygen)\b",
        ),
    ),
    // Generic injection: template engines, serializers and ORMs.
    rule(
        "node-serialize-function",
        "Node.js injection: node-serialize or funcster function marker",
        Critical,
        1,
        EVERYWHERE,
        TEXT,
        Test::Regex(
            &["_$$nd_func$$_", "__js_function"],
            r"_\$\$nd_func\$\$_|__js_function\b",
        ),
    ),
    rule(
        "orm-lookup-traversal",
        "ORM filter injection: relation traversal with a lookup operator in an argument name",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        LOWER,
        Test::Regex(
            &["__"],
            r"\w+__\w+__(?:i?contains|i?startswith|i?endswith|i?exact|i?regex|in|gt|gte|lt|lte|isnull|range|search)$",
        ),
    ),
    rule(
        "ssrf-internal-host",
        "Server-side request forgery: internal host name, malformed scheme or confusing authority",
        Critical,
        1,
        ARG_VALUES | TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["localhost", ".internal", "metadata", ":", "@"],
            r"^\s*(?:[a-z][a-z0-9+.-]*://)?(?:localhost[46]?(?:\.localdomain[46]?)?|[\w-]+(?:\.[\w-]+)*\.internal|metadata\.[\w-]+(?:\.[\w-]+)*)\.?(?:[:/?#]|$)|^\s*(?:https?|ftps?|gopher|dict|ldap|tftp):(?:\d{1,3}\.\d|\d{8,10}(?:[:/?#]|$)|0x[0-9a-f]{8}\b|\[|localhost)|^\s*[a-z]+://[^/]*@[^/]*@|://[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?[/\\]@|\b[a-z][a-z0-9+.-]*://(?:[^/?#\s@]*@)?(?:\d{8,10}|0x[0-9a-f]{8}|\d{1,3}\.\d{5,8}|\d{1,3}\.\d{1,3}\.\d{4,5}|(?:0x[0-9a-f]{1,2}\.){1,3}0x[0-9a-f]{1,2}|(?:0\d{1,3}\.){3}0\d{1,3})(?:[:/?#]|$)",
        ),
    ),
    // Path and file access.
    rule(
        "lfi-backup-file",
        "Request for a backup, dump, database or key file",
        Critical,
        1,
        TargetKind::Path.bit(),
        PATH,
        Test::Regex(
            &["."],
            r"\.(?:sql|bak|backup|old|orig|swp|sav|dump|mdb|sqlite3?|pem|key|pfx|p12|jks|kdbx)(?:\.(?:zip|gz|tgz|tar|bz2|xz|7z|rar))?$",
        ),
    ),
    rule(
        "lfi-hidden-file",
        "Request for a hidden file or directory other than /.well-known",
        Critical,
        1,
        TargetKind::Path.bit(),
        PATH,
        Test::Regex(
            &["/."],
            r"/\.(?:[a-vx-z0-9_-]|w(?:[a-df-z0-9_-]|e[a-km-z0-9_-]))",
        ),
    ),
    rule(
        "cmdi-obfuscated-system-file",
        "Command injection: system file path written with shell quoting or escapes",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["/etc/", "/proc/"],
            r"/etc/+(?:\./+)*(?:passwd|shadow|group|hosts|issue|sudoers|crontab)\b|/proc/(?:self|\d+)/(?:environ|cmdline|maps|fd|mem|status)\b",
        ),
    ),
    rule(
        "sqli-literal-comparison",
        "SQL injection: a value that is only a comparison of literals, a quote probe or a CASE fragment",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["=", "<", ">", "like", "regexp", "xor", "'", "\"", "when", "e-"],
            r#"^\s*(?:\d+|'[^']*')\s*(?:=|<>|<=>|!=|[<>]=?|\s(?:not\s+)?(?:like|regexp|rlike|xor)\s)\s*(?:\d+|'[^']*')\s*$|^\s*(?:"'|'")\s*$|\)\s*when\s+\S+\s+then\b|\)\s*(?:not\s+)?(?:like|rlike|regexp)\s*\(|\b2\.22507385850720[01]\d*e-0*308\b"#,
        ),
    ),
    rule(
        "sqli-subquery-or-evasion",
        "SQL injection: subquery after an operator, numeric IF probe, exponent evasion, dangling LIKE quote or JSON path comparison",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &[
                "select", "if(", "if (", ".e(", ".e (", "0e(", "1e(", "2e(", "3e(", "4e(", "5e(",
                "6e(", "7e(", "8e(", "9e(", "union", "from", "and", "or", "xor", "div", "like", "having", "like'", "like '", "like\"", "like \"", "regexp'",
                "regexp '", "regexp\"", "regexp \"", "'$", "\"$",
            ],
            r#"(?:[=<>(]|\b(?:in|exists|any|all|some|not))\s*\(\s*select\b|\b(?:and|or|xor)\s*\(\s*select\s+[^()]{1,80}?\bfrom\s+[\w.`\[\]]+\s*(?:where\b|limit\b|\)|$)|\bif\s*\(\s*\d+\s*(?:=|<|>)|\b\d+\.?e\s*\(|\b\d+\.?e\d*(?:union|select|from|and|or|xor|div|like|having)\b|\b(?:like|regexp|rlike)\s*['"]\s*$|['"]\s*(?:->>?|[<>=])\s*['"]\$[.\[]"#,
        ),
    ),
    rule(
        "sqli-function-name",
        "SQL injection: call of a database-only function",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::WordRegex(
            &[
                "database",
                "db_name",
                "schema_name",
                "current_user",
                "session_user",
                "system_user",
                "suser_sname",
                "is_srvrolemember",
                "char",
                "nchar",
                "unhex",
            ],
            r"(?:^|[^\w.])(?:database|db_name|schema_name|current_user|session_user|system_user|suser_sname|is_srvrolemember|n?char|unhex)\s*\(",
        ),
    ),
    rule(
        "sqli-unclosed-function-call",
        "SQL injection: a database function name with an opening parenthesis that ends the value",
        Critical,
        1,
        ARGS | TargetKind::CookieValue.bit(),
        SQL,
        Test::Regex(
            &["("],
            r"(?:^|[^\w.$])(?:abs|acos|add(?:date|time)|aes_(?:en|de)crypt|array_agg|ascii(?:str)?|asin|atan2?|avg|benchmark|bin|bin_to_num|bit_(?:and|or|xor|length|count)|cast|ceil(?:ing)?|char(?:_length|acter_length|index|set)?|chr|coalesce|coercibility|collation|compress|concat(?:_ws)?|connection_id|conv|convert(?:_tz)?|cos|cot|count|crc32|cur(?:date|time)|current_(?:date|time|timestamp|user|setting|database|schema)|database|datalength|date_(?:add|sub|format|trunc|part)|datediff|datepart|dayname|dayof(?:month|week|year)|db_name|decode|degrees|des_(?:en|de)crypt|elt|encode|encrypt|exp|export_set|extract(?:value)?|field|find_in_set|floor|format|found_rows|from_(?:base64|unixtime|days)|generate_series|get_(?:format|lock)|getdate|greatest|group_concat|hex|hextoraw|host_name|if|ifnull|iif|inet6?_(?:aton|ntoa)|instr|is_(?:free|used)_lock|isnull|jsonb?_[a-z_]+|last_(?:day|insert_id)|lcase|least|left|len|length|ln|load_file|locate|log(?:10|2)?|lower|lpad|ltrim|make(?:_set|date|time)|master_pos_wait|max|md5|microsecond|mid|min|mod|monthname|name_const|newid|now|nullif|nvl2?|object_(?:id|name)|oct|octet_length|old_password|ord|password|period_(?:add|diff)|pg_[a-z_]+|pi|position|pow(?:er)?|quote(?:name)?|radians|rand(?:om|omblob)?|rawto(?:n?hex)|regexp_(?:like|replace|substr|instr)|release_lock|repeat|replace|reverse|right|round|row_count|rpad|rtrim|schema|sec_to_time|session_user|sha[12]?|sign|sin|sleep|soundex|space|sqlite_version|sqrt|stddev(?:_pop|_samp)?|str_to_date|strcmp|string_(?:agg|to_array)|stuff|sub(?:date|time)|substr(?:ing(?:_index)?)?|sum|suser_sname|sys_context|sysdate|system_user|tan|time_(?:format|to_sec)|timediff|timestamp(?:add|diff)|to_(?:char|number|date|base64|days|seconds|nchar|timestamp)|translate|trim|typeof|ucase|uncompress(?:ed_length)?|unhex|unicode|unistr|unix_timestamp|unnest|updatexml|upper|user|utc_\w+|uuid(?:_short)?|values|var_(?:pop|samp)|variance|version|weekday|weekofyear|weight_string|xmltype|yearweek|zeroblob)\s*\\?\(\s*$",
        ),
    ),
    rule(
        "sqli-operator-only-name",
        "SQL injection: an argument name that is only an SQL operator",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        SQL,
        Test::Regex(
            &["|", "&", "<", ">", "=", "!", "xor", "like", "null", "not "],
            r"^\s*(?:\|\||&&|<=>|>=|<=|<>|!=|==|>>|<<|xor|(?:not\s+)?like\s+null|sounds\s+like|not\s+(?:like|regexp|rlike|between|in)|is\s+(?:not\s+)?null)\s*$",
        ),
    ),
    rule(
        "sqli-operator-only-value",
        "SQL injection: an argument value that is only an SQL operator with no operand",
        Critical,
        1,
        ARG_VALUES,
        SQL,
        Test::Regex(
            &["|", "&", "<=>", "like", "not "],
            r"^\s*(?:\|\||&&|<=>|(?:not\s+)?like\s+null|not\s+(?:like|regexp|rlike))\s*$",
        ),
    ),
    rule(
        "cmdi-tilde-or-history-expansion",
        "Command injection: a value that is only a shell tilde, history or arithmetic expansion such as ~+, !-2 or $((7*7))",
        Critical,
        1,
        ARGS,
        TEXT,
        // `$[...]` counts only empty or with an operator, because JSONPath
        // writes `$[0]` and `$[*]`.
        Test::Regex(
            &["~", "!-", "$[", "$(("],
            r"^\s*(?:~(?:[+-]\d*|\d+)|(?:!-\d+)+|\$\[\s*(?:[\w$]+\s*[-+*/%]\s*[\w$]+)?\s*\]|\$\(\([^()]*\)\))\s*$",
        ),
    ),
    named(
        rule(
            "cmdi-command-line-header",
            "Command injection: a User-Agent or Referer that is a shell command line",
            Critical,
            1,
            HEADERS,
            SHELL,
            Test::WordRegex(
                COMMAND_WORDS,
                concat!(
                    r"^\s*",
                    bin_prefix!(),
                    "(?:",
                    strong_commands!(),
                    r")\s+[^\s/(;]|^\s*(?:visudo|whoami|uname|ifconfig|ipconfig|printenv|id|passwd|sudo)\s*$"
                ),
            ),
        ),
        &["user-agent", "referer"],
    ),
    rule(
        "cmdi-separator-then-command",
        "Command injection: a value that starts with a shell separator followed by a command name",
        Critical,
        1,
        ARG_VALUES | TargetKind::CookieValue.bit(),
        SHELL,
        Test::Regex(
            &[";", "|", "&", "\n"],
            concat!(
                r"^\s*(?:;|\|\|?|&&?|\n)\s*",
                bin_prefix!(),
                "(?:",
                strong_commands!(),
                r")(?:\s|$)"
            ),
        ),
    ),
    rule(
        "cmdi-automation-tool",
        "Command injection: a configuration management tool run with a subcommand",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["ansible", "chef-", "salt-"],
            r"(?:^|[;&|`\n(]\s*)(?:(?:ansible|chef|salt)-[a-z]+\s+[a-z-]|ansible\s+(?:all|localhost|-[a-z]))",
        ),
    ),
    rule(
        "ssi-directive",
        "Server-side include directive",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["<!--"],
            r"<!--\s*#\s*(?:exec|include|echo|set|config|fsize|flastmod|printenv|if|elif)\b",
        ),
    ),
    rule(
        "xss-comment-close",
        "Cross-site scripting: a value that starts by closing an HTML comment",
        Critical,
        1,
        ARGS,
        MARKUP,
        Test::Regex(&["--"], r#"^\s*['"`]?\s*--!?>"#),
    ),
    rule(
        "upload-server-config-file",
        "Upload of a file that configures the web server or the application",
        Critical,
        1,
        TargetKind::FileName.bit(),
        FILE,
        Test::Regex(
            SERVER_CONFIG_LITERALS,
            SERVER_CONFIG_FILE,
        ),
    ),
    named(
        rule(
            "upload-server-config-file-header",
            "Upload of a file that configures the web server or the application, named in a header",
            Critical,
            1,
            HEADERS,
            FILE,
            Test::Regex(
                SERVER_CONFIG_LITERALS,
                SERVER_CONFIG_FILE,
            ),
        ),
        &["x-filename", "x_filename", "x-file-name", "x-file"],
    ),
    rule(
        "sqli-glued-string-or-chained-condition",
        "SQL injection: a quoted string glued to a word after AND or OR, AND or OR glued between quotes, a condition chained with || or &&, or a run of quotes",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["'", "\"", "||", "&&"],
            r"\b(?:and|or|xor)\s+'[^']*'[a-z_]|\w'\)*(?:or|and|xor)\(*'|\w\x22\)*(?:or|and|xor)\(*\x22|(?:^|=)\s*(?:\|\||&&)\s*\(?\s*[a-z_][\w.]*\s*(?:={1,3}|!==?|<>|[<>]=?)|(?:'[\s.,+|]{0,2}){8,}",
        ),
    ),
    // The quote in the first two branches is an odd-numbered quote of its
    // kind, so it ends a string that the application opened: `3' ' 1` and
    // `x' ? = #` pass nothing but an empty string or bare operators after
    // it. `rock 'n' roll` and `say 'hi' !!` pass, because their quotes
    // pair up.
    // NOTE: an apostrophe earlier in the value shifts the count, so prose
    // such as `it's 'a' 'b'` matches.
    rule(
        "sqli-quote-fragment",
        "SQL injection: a string closed and followed by an empty string or only operators, or a value that starts with a comma and an identifier closed by a quote",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["'", "\"", ","],
            r#"^[^']*(?:'[^']*'[^']*)*(?:[\w)]'\s+'|'\s*[?#=<>!|&^~]+(?:\s+[?#=<>!|&^~@]+)+\s*$)|^[^"]*(?:"[^"]*"[^"]*)*(?:[\w)]"\s+"|"\s*[?#=<>!|&^~]+(?:\s+[?#=<>!|&^~@]+)+\s*$)|^\s*,\s*[a-z_][\w.]*\s*['"`)]"#,
        ),
    ),
    rule(
        "sqli-backtick-name",
        "SQL injection: an argument name quoted as an SQL identifier with backticks",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        TEXT,
        Test::Regex(&["`"], r"`[^`]*`"),
    ),
    rule(
        "cmdi-relative-binary-path",
        "Command injection: a value that starts with a relative bin/ path to a command",
        Critical,
        1,
        ARG_VALUES,
        SHELL,
        Test::Regex(
            &["bin/"],
            concat!(
                r"^\s*(?:\./)?(?:usr/)?(?:local/)?s?bin/(?:",
                strong_commands!(),
                r")(?:$|[\s;|&])"
            ),
        ),
    ),
    rule(
        "cmdi-cli-dot-command",
        "Command injection: a SQLite shell dot command after a separator",
        Critical,
        1,
        FIELDS,
        TEXT,
        // `.shell` and `.system` run programs, `.load` loads native code,
        // and the others list or copy the database or read and write files.
        // A literal `\n` counts as a separator because applications that
        // build a script for the sqlite3 shell expand it. Commands other
        // than `.shell` and `.system` need a separator before them, because
        // a lone `.tables` or `.read-more` is a CSS class selector.
        Test::Regex(
            &[
                ".shell",
                ".system",
                ".databases",
                ".tables",
                ".schema",
                ".fullschema",
                ".dump",
                ".dbinfo",
                ".load",
                ".import",
                ".output",
                ".once",
                ".read",
            ],
            r"(?:^|[;&|\n])\s*(?:\\n)?\s*\.(?:shell|system)\s|(?:[;&|\n]|\\n)\s*\.(?:(?:databases|tables|schema|fullschema|dump|dbinfo)(?:\s|$)|(?:load|import|output|once|read)\s+\S)",
        ),
    ),
    rule(
        "xss-entity-obfuscation",
        "Cross-site scripting: a tab, newline or colon written as a doubly encoded HTML entity",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["&tab;", "&newline;", "&colon;"],
            r"&(?:tab|newline|colon);",
        ),
    ),
    rule(
        "php-snake-case-call-probe",
        "PHP injection: a call of a PHP function that reports on the process or the runtime, such as posix_getuid(), that ends the value",
        Critical,
        1,
        ARGS | TargetKind::Path.bit() | TargetKind::CookieValue.bit(),
        SQL,
        Test::Regex(
            &["_"],
            r"(?:^|[^\w$.>:\\-])(?:(?:posix|proc|pcntl|php|ini|opcache|zend|apache|gc|realpath_cache|memory_get)_[a-z0-9_]+|sys_get_temp_dir|disk_(?:free|total)_space|get_(?:current_user|cfg_var|defined_[a-z]+|loaded_extensions|include_path|declared_[a-z]+|magic_quotes_[a-z]+)|error_reporting|debug_(?:backtrace|zval_dump|print_backtrace))\s*\(\s*\)?\s*(?:\[\s*\d*\s*\])?\s*;?\s*$",
        ),
    ),
    rule(
        "sqli-leading-boolean-call",
        "SQL injection: a value that starts with AND, OR or XOR followed by a function call",
        Critical,
        1,
        FIELDS,
        SQL,
        Test::Regex(
            &["or", "and", "xor", "||", "&&"],
            r#"^\s*(?:or|and|xor|\|\||&&)\s+(?:not\s+)?[a-z_]\w*\s*\(\s*(?:\d|['"(@]|select\b)"#,
        ),
    ),
    rule(
        "xss-event-handler-name",
        "Cross-site scripting: event handler assignment inside an argument name",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        MARKUP,
        Test::Regex(&["on"], r"(?:^|[\s'\x22/])on[a-z]{3,}\s*="),
    ),
    // CRLF, response splitting and header injection. A header name counts
    // only right after the line break: an indented line is a continuation
    // of the header before it, and configuration text such as YAML puts
    // `host:` or `cookie:` on indented lines. An address followed by a line
    // break and a mail header adds recipients to a mail that the
    // application sends. U+560A, U+560D, U+010A and U+010D end in the bytes
    // of LF and CR, which servers that keep the low byte of each UTF-16 code
    // unit write as a line break. Lower-casing turns U+010A into U+010B.
    rule(
        "crlf-injection",
        "CRLF injection or HTTP response splitting",
        Critical,
        1,
        URL_AND_ARGS | TargetKind::QueryString.bit(),
        &[UrlDecode, HtmlEntities, RemoveNul, Lowercase],
        Test::Regex(
            &["\r", "\n", "\u{560a}", "\u{560d}", "\u{10b}", "\u{10d}"],
            r"[\r\n\x{560a}\x{560d}\x{10b}\x{10d}](?:(?:set-cookie|cookie|location|refresh|content-[\w-]+|transfer-encoding|host|x-[\w-]+|access-control-[\w-]+|link|via|connection|upgrade|authorization|cache-control|expires|pragma|server|www-authenticate|strict-transport-security|p3p|etag|last-modified|vary|age|status|keep-alive|te|trailer|proxy-[\w-]+|origin|referer|user-agent|accept[\w-]*|forwarded|range|if-[\w-]+)\s*:|\s*(?:http/\d|<html|<script|(?:get|post|put|head|delete|options|connect|trace|patch)\s+\S+\s+http/))|^\s*[^\s@]+@[^\s@]+?[\r\n]+(?:bcc|cc|to|from|subject|reply-to|sender|content-type)\s*:",
        ),
    ),
    rule(
        "http-request-in-argument",
        "HTTP request line or response inside an argument",
        Critical,
        1,
        URL_AND_ARGS,
        TEXT,
        Test::Regex(
            &["http/"],
            r"(?:^|[\r\n])\s*(?:get|post|put|head|delete|options|connect|trace|patch|propfind)\s+\S+\s+http/\d|http/\d(?:\.\d)?\s+\d{3}\b",
        ),
    ),
    // Catches a request line and a header line, or the empty line that ends
    // the headers, in a body that is not parsed into arguments. A front end
    // and a back end that disagree on the body length forward the rest of
    // such a body as a second request, so the request line may follow other
    // bytes that end the first body. Only CRLF line ends count, because
    // documentation in Markdown or plain text shows requests with bare LF.
    // NOTE: batch formats that carry whole requests (`multipart/mixed` with
    // `application/http` parts) match too; they are not allowed content types
    // by default.
    rule(
        "http-request-in-body",
        "HTTP request line and header inside a request body",
        Critical,
        1,
        TargetKind::Body.bit(),
        TEXT,
        Test::Regex(
            &["http/1."],
            r"(?:get|post|put|head|delete|options|connect|trace|patch)\s+(?:/|\*|https?://)\S*\s+http/1\.[01]\r\n(?:[\w-]+\s*:|\r\n)",
        ),
    ),
    rule(
        "crlf-in-header-name-argument",
        "Line break inside an argument name or path",
        Critical,
        1,
        TargetKind::ArgName.bit() | TargetKind::Path.bit() | TargetKind::QueryString.bit(),
        &[UrlDecode],
        Test::Regex(&["\r", "\n"], r"[\r\n]"),
    ),
    rule(
        "ldap-injection",
        "LDAP filter injection",
        Critical,
        1,
        ARG_VALUES,
        TEXT,
        Test::Regex(
            &[")", "(&", "(|", "*)", "~="],
            r"\)\s*[|&]\s*\(\s*(?:[&|!]|[\w-]+\s*[~<>]?=)|\)\s*\(\s*[&|!]\s*(?:\)|\(|$)|\)\s*\(\s*[\w-]+\s*[~<>]?=|\)\s*!\s*\(|\(\s*[&|!]\s*\(\s*[\w-]+\s*[~<>]?=|\*\s*\)\s*\(|\(\s*\w+\s*~=",
        ),
    ),
    rule(
        "mod-proxy-unix-socket",
        "Apache mod_proxy unix socket request",
        Critical,
        1,
        TargetKind::QueryString.bit() | TargetKind::Path.bit(),
        &[UrlDecode, Lowercase],
        Test::Regex(&["unix:"], r"unix:[^|]*\|"),
    ),
    rule(
        "cookie-v1-smuggling",
        "Cookie version 1 syntax used to smuggle values",
        Critical,
        1,
        TargetKind::CookieName.bit(),
        LOWER,
        Test::Regex(&["$version"], r"^\s*\$version\b"),
    ),
    // Session fixation.
    rule(
        "session-fixation-set-cookie",
        "Session fixation: cookie set from script or markup",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["cookie", "set-cookie"],
            r"\.cookie\b.{0,80}?(?:=|;)|document\s*\.\s*cookie\s*=|\bset-cookie\s*:|http-equiv\s*=\s*['\x22]?set-cookie|;\s*(?:expires|domain|path)\s*=",
        ),
    ),
    rule(
        "session-fixation-id-in-path",
        "Session fixation: session id as a path parameter",
        Critical,
        1,
        TargetKind::Path.bit(),
        &[UrlDecode, Lowercase],
        Test::Regex(
            &["sessid", "sessionid", "session_id"],
            r";\s*(?:jsessionid|phpsessid|aspsessionid\w*|asp\.net_sessionid|sessionid|session_id)\s*=",
        ),
    ),
    named(
        rule(
            "session-fixation-id-in-url",
            "Session fixation: session id in the URL",
            Critical,
            1,
            ARG_VALUES,
            LOWER,
            Test::Regex(&[], r"."),
        ),
        &[
            "jsessionid",
            "phpsessid",
            "aspsessionid",
            "asp.net_sessionid",
            "cfid",
            "cftoken",
            "weblogicsession",
            "jwsession",
            "sails.sid",
            "connect.sid",
            "laravel_session",
            "ci_session",
            "__secure-next-auth.session-token",
            "next-auth.session-token",
            "_session_id",
            "rack.session",
            "express.sid",
            "zend_session",
            "koa.sid",
            "koa:sess",
            "flask_session",
            "phpsession",
            "cfsid",
            "jservsession",
        ],
    ),
    // Command injection: parameters that carry a host name or a command,
    // and Windows and shell environment forms.
    named(
        rule(
            "cmdi-host-parameter-shell-syntax",
            "Command injection: shell syntax or a command line in a host name or address parameter",
            Critical,
            1,
            ARG_VALUES,
            SHELL_LINES,
            Test::Regex(
                &[
                    ";", "|", "&", "`", "\r", "\n", "<", ">", "$(", "${", " ", "\t", "id", "whoami",
                    "uname", "ifconfig", "ipconfig", "pwd", "printenv", "systeminfo", "tasklist",
                ],
                concat!(
                    r"[;|&`\r\n<>]|\$[({]|^\s*(?:id|whoami|uname|ifconfig|ipconfig|pwd|printenv|systeminfo|tasklist)\s*$|^\s*",
                    bin_prefix!(),
                    "(?:",
                    strong_commands!(),
                    r")[ \t]+\S"
                ),
            ),
        ),
        HOST_PARAMETERS,
    ),
    named(
        rule(
            "cmdi-command-parameter",
            "Command injection: a shell command in a parameter whose value the application runs",
            Critical,
            1,
            ARG_VALUES,
            SHELL,
            Test::WordRegex(
                COMMAND_WORDS,
                concat!(r"^\s*", bin_prefix!(), "(?:", strong_commands!(), r")(?:\s|$)"),
            ),
        ),
        COMMAND_PARAMETERS,
    ),
    // An IPv4 address, `localhost` or a host or file name, then a separator
    // and a short command line. A name needs a dot, a last label of letters
    // and the separator right after it. This keeps out phrases such as
    // `fish & chips`, `v1.2; cat food` or `Node.js | Echo framework`.
    rule(
        "cmdi-address-then-command",
        "Command injection: an address or file name followed by a separator and a short command line",
        Critical,
        1,
        FIELDS,
        SHELL_LINES,
        Test::Regex(
            &[";", "|", "&", "\n", "\r"],
            concat!(
                r"^\s*(?:(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?|localhost)[ \t]*|[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?::\d+)?)(?:;|\|\|?|&&?|\r?\n)+[ \t]*(?:\{[ \t]*)?",
                bin_prefix!(),
                "(?:",
                strong_commands!(),
                "|",
                windows_programs!(),
                r"|head|tail|more|less|touch|kill|find|dir|type|export|set|ver|del)(?:\.exe)?(?:[ \t]+[\w.,/@:=+~*'\x22$-]+){0,4}[ \t]*$"
            ),
        ),
    ),
    rule(
        "cmdi-windows-obfuscation",
        "Command injection: cmd variable slicing, PowerShell aliases and .NET calls that payloads use, or a program started after a separator",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &[
                ":~", "$pshome", "$shellid", "$env:comspec", "env:", "iex", "iwr", "invoke-", "gcm",
                "get-command", "::", ".exe", ".bat", ".ps1", ".vbs", ".hta", "mspaint", "script",
                "whoami", "systeminfo", "ipconfig", "tasklist",
            ],
            r"%[a-z_][\w()]*:~-?\d+(?:,-?\d+)?%|\$(?:pshome|shellid|env:comspec)\s*\[|\$env:comspec\b|\b(?:gci|ls|dir|get-childitem|gc|get-content|type|cat)\s+env:|\b(?:sal|set-alias|nal|new-alias)\s+(?:-\w+\s+)*[\w-]+\s+(?:-\w+\s+)*(?:iex|invoke-expression|iwr|invoke-webrequest)\b|\b(?:gcm|get-command)\s+[\w-]*[*?]|\[(?:system\.)?(?:diagnostics\.process|reflection\.assembly|net\.webclient|activator|scriptblock|runtime\.interopservices\.marshal)\]\s*::|\[(?:system\.)?convert\]\s*::\s*frombase64string|\[(?:system\.)?text\.encoding\]\s*::\s*\w+\s*\.\s*getstring|[;&|]\s*(?:[a-z]:)?[\w\\/.-]*\.(?:exe|bat|ps1|vbs|hta)\b|[;&|]\s*(?:mspaint|wscript|cscript|whoami|systeminfo|ipconfig|tasklist)(?:\.exe)?\s*$",
        ),
    ),
    rule(
        "cmdi-environment-tampering",
        "Command injection: loader, startup or history variables set after a separator, or a /dev/tcp redirection",
        Critical,
        1,
        FIELDS,
        SHELL,
        Test::Regex(
            &["ld_", "bash_env", "prompt_command", "histfile", "histsave", "/dev/tcp/", "/dev/udp/"],
            r"[;&|`]\s*(?:export\s+)?(?:ld_preload|ld_audit|bash_env|prompt_command|histfile)\s*=|[;&|`]\s*unset\s+(?:histfile|histsave|bash_env)\b|/dev/(?:tcp|udp)/[\w.-]+/\d+",
        ),
    ),
    // Client-side template expressions: AngularJS, Vue and similar engines
    // evaluate `{{...}}` in the page, and `constructor.constructor` reaches
    // the Function constructor from any object.
    rule(
        "xss-function-constructor",
        "Cross-site scripting: the Function constructor reached through constructor.constructor or called with code",
        Critical,
        1,
        FIELDS,
        MARKUP,
        Test::Regex(
            &["constructor"],
            r#"\bconstructor\s*\.\s*constructor\b|\.\s*constructor\s*[(`]\s*['"`]"#,
        ),
    ),
    // Files that hold credentials or server configuration, in a value that
    // is only a path. A sentence that names such a file does not start with
    // a path and end with the file name.
    rule(
        "lfi-sensitive-path-value",
        "Access to a credential or server configuration file through a path parameter",
        Critical,
        1,
        ARG_VALUES | TargetKind::CookieValue.bit(),
        FILE,
        Test::Regex(
            &["/", "\\"],
            r"^\s*(?:[a-z]:|~|\.{1,2})?[/\\](?:[^\r\n<>|]*[/\\])?(?:tomcat-users\.xml|pg_hba\.conf|httpd\.conf|apache2\.conf|nginx\.conf|my\.ini|my\.cnf|\.git-credentials|credentials(?:\.db|\.json)?|master\.key|secrets\.ya?ml|database\.ya?ml|application(?:-\w+)?\.(?:properties|ya?ml)|\.env(?:\.\w+)?|id_(?:rsa|dsa|ecdsa|ed25519)|ssh_host_\w+_key|admin\.conf|k3s\.yaml|kubeconfig|privkey\.pem|web\.xml)\s*$|^\s*(?:[a-z]:)?[/\\]?(?:[^\s]*[/\\])?(?:web|meta)-inf[/\\]|^\s*/(?:etc/(?:kubernetes|rancher|letsencrypt|ssl/private|postgresql|docker|containerd|kubelet)|(?:var/)?run/secrets)/",
        ),
    ),
    // Classic ASP names its session cookie ASPSESSIONID and eight letters
    // that change with the application pool.
    rule(
        "session-fixation-asp-id-name",
        "Session fixation: classic ASP session id in an argument",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        LOWER,
        Test::Regex(&["aspsessionid"], r"^aspsessionid[a-z]{8}$"),
    ),
    rule(
        "base64-encoded-attack",
        "Attack syntax inside a base64-encoded argument",
        Critical,
        1,
        ARGS | TargetKind::CookieName.bit() | TargetKind::CookieValue.bit(),
        BASE64,
        Test::Regex(
            &[
                "<",
                "select",
                "union",
                "jndi",
                "/etc/",
                "script",
                "system(",
                "cmd",
                "runtime",
                "processbuilder",
                "invoker",
                "transformer",
                "prototype",
                "child_process",
                "require",
            ],
            r"<\s*script|\bunion\s+select|\$\{jndi|/etc/passwd|javascript:|\bsystem\s*\(|cmd\.exe|java\.lang|processbuilder|runtime|invokertransformer|instantiatetransformer|prototype\w*factory|serialization|child_process|\brequire\s*\(\s*['\x22`]",
        ),
    ),
    // Injections of narrower families: callables named in arguments, template
    // and expression probes, Edge Side Includes, spreadsheet formulas, and
    // request forms of remote inclusion, smuggling and php-cgi exploits.
    rule(
        "php-render-array-callback",
        "PHP injection: a Drupal render array callback in an argument name",
        Critical,
        1,
        TargetKind::ArgName.bit(),
        LOWER,
        Test::Regex(
            &["#"],
            r"#(?:post_render|pre_render|lazy_builder|access_callback)\b",
        ),
    ),
    named(
        rule(
            "php-callable-argument",
            "PHP injection: a command or code execution function as the function to call",
            Critical,
            1,
            ARG_VALUES,
            TEXT,
            Test::Regex(
                &[],
                r"^\s*\\?(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|assert|call_user_func(?:_array)?|create_function|phpinfo|file_put_contents|preg_replace|array_map|array_filter|usort)\s*$",
            ),
        ),
        CALLABLE_PARAMETERS,
    ),
    rule(
        "php-thinkphp-route",
        "PHP injection: a ThinkPHP controller route to a framework class",
        Critical,
        1,
        ARG_VALUES,
        TEXT,
        Test::Regex(
            &["think"],
            r"\bthink\\+(?:app|request|container|template\\+driver\\+file|view\\+driver\\+php)\b",
        ),
    ),
    rule(
        "php-cgi-option",
        "PHP injection: a php-cgi command-line option as the query string",
        Critical,
        1,
        TargetKind::QueryString.bit(),
        TEXT,
        Test::Regex(&["-"], r"^\s*-(?:[sn]\s*(?:$|&)|d\s*[\w.]+\s*=)"),
    ),
    rule(
        "java-el-implicit-object",
        "Java injection: an expression language implicit object",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["${", "#{"],
            r"[$#]\{\s*(?:applicationscope|sessionscope|requestscope|pagescope|pagecontext|initparam|facescontext|headervalues|paramvalues)\b",
        ),
    ),
    rule(
        "template-context-probe",
        "Template injection: a probe for the template engine's configuration or context",
        Critical,
        1,
        FIELDS,
        TEXT,
        Test::Regex(
            &["{{", "{$smarty."],
            r"\{\{\s*(?:config(?:\.items\(\))?|settings\.secret_key|handler\.settings|self|\.)\s*\}\}|\{\$smarty\.(?:version|now|template|server|env|const|get|cookies|session)\b",
        ),
    ),
    rule(
        "esi-injection",
        "Edge Side Includes tag",
        Critical,
        1,
        EVERYWHERE,
        MARKUP,
        Test::Regex(&["esi"], r"<\s*esi:[a-z]|<!--\s*esi\b"),
    ),
    rule(
        "csv-formula-injection",
        "Spreadsheet formula that runs a command or fetches a URL",
        Critical,
        1,
        ARG_VALUES,
        TEXT,
        Test::Regex(
            &[
                "cmd", "powershell", "pwsh", "mshta", "msexcel", "rundll32", "certutil", "hyperlink",
                "import", "webservice", "dde",
            ],
            r"^\s*[=+\-@].{0,80}?\b(?:cmd|powershell|pwsh|mshta|msexcel|rundll32|certutil)\s*\|\s*'|^\s*[=+\-@]\s*(?:hyperlink|importxml|importdata|importhtml|importfeed|importrange|webservice|dde|ddeauto)\s*\(",
        ),
    ),
    rule(
        "sqli-numeric-logic",
        "SQL injection: a number joined to another by a logical operator",
        Critical,
        1,
        ARG_VALUES,
        SQL,
        Test::Regex(&["&&", "||"], r"^\s*-?\d+\s*['\x22)]*\s*(?:&&|\|\|)\s*['\x22(]*\s*-?\d+"),
    ),
    named(
        rule(
            "rfi-network-path-parameter",
            "Remote file inclusion: a network share or another host's path in an include parameter",
            Critical,
            1,
            ARG_VALUES,
            TEXT,
            Test::Regex(
                &["\\\\", "//", "http", "ftp"],
                r"^\s*(?:\\\\[\w.-]+(?:@(?:ssl@)?\d+)?\\|//[\w-]+(?:\.[\w-]+)+(?::\d+)?/|(?:https?|ftps?):(?:\\\\|/\\|\\/|/\w))",
            ),
        ),
        INCLUDE_PARAMETERS,
    ),
    rule(
        "lfi-jar-url",
        "Local or remote file access through a jar: URL",
        Critical,
        1,
        EVERYWHERE,
        TEXT,
        Test::Regex(&["jar:"], r"\bjar:(?:file|https?|ftp|jar):"),
    ),
    rule(
        "lfi-java-web-config",
        "Request for a Java web application's configuration directory",
        Critical,
        1,
        TargetKind::Path.bit(),
        PATH,
        Test::Regex(&["-inf"], r"/(?:web|meta)-inf(?:/|$)"),
    ),
    named(
        rule(
            "protocol-h2c-upgrade",
            "Request smuggling: an upgrade to cleartext HTTP/2 through the proxy",
            Critical,
            1,
            HEADERS,
            LOWER,
            Test::Regex(&["h2c"], r"\bh2c\b"),
        ),
        &["upgrade"],
    ),
];
