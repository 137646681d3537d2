import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused, expectOnlyForwarded } from '../../helpers/client-suite.js';
import {
  clientEnv,
  freshHome,
  scratchDir,
  metricValue,
  requestLog,
  requireClient,
  run,
  runOk,
  startTreeServer,
  urlsIn,
} from '../../helpers/clients.js';

/**
 * Maven resolves its build plugins and a dependency through the gateway with strict checksums,
 * in an empty local repository, online (no -o). Maven Central is out of reach here, so the
 * upstream is a Maven 2 layout served from the machine's own ~/.m2/repository (the plugin
 * closure a trivial `mvn compile` needs is there) plus com.acme:acme-lib:1.0.0 built by the
 * test with its .sha1 files. Checksums missing from ~/.m2 (a local repository keeps none) are
 * computed from the files, as a remote repository would publish them.
 *
 * Maven sends its credentials only after a 401 challenge: the run counts challenges, and none
 * of them may count as an authentication failure.
 */

const M2 = path.join(os.homedir(), '.m2', 'repository');
const RESOURCES_PLUGIN = '3.3.1';
const COMPILER_PLUGIN = '3.13.0';

let mvn: string;
const { gw, upstream } = clientSuite({
  label: 'maven',
  route: { prefix: '/maven/', ecosystem: 'maven' },
  requireClients: () => {
    mvn = requireClient('mvn', 'apt-get install maven');
    if (!existsSync(path.join(M2, 'org', 'apache', 'maven', 'plugins'))) {
      throw new Error(
        `${M2} holds no Maven plugins: the test serves the plugin closure from there (run any mvn build once online, or apt-get install maven on the CI image)`,
      );
    }
  },
  // acme-lib (built into the upstream's own root) first, then the machine's ~/.m2.
  upstream: (root) => startTreeServer({ roots: [root, M2], sha1: true }),
  build: (root) => buildAcmeLib(root),
});

/** com.acme:acme-lib:1.0.0, a jar with one class, its pom and a .sha1 for each. */
async function buildAcmeLib(root: string): Promise<void> {
  const src = scratchDir('acme-lib-src');
  const javaFile = path.join(src, 'com', 'acme', 'Lib.java');
  mkdirSync(path.dirname(javaFile), { recursive: true });
  writeFileSync(
    javaFile,
    'package com.acme;\npublic final class Lib {\n  public static String name() { return "acme-lib"; }\n}\n',
  );
  const env = { PATH: process.env.PATH, HOME: src };
  const classes = path.join(src, 'classes');
  await runOk(requireClient('javac', 'apt-get install openjdk-17-jdk-headless'), ['-d', classes, javaFile], {
    cwd: src,
    env,
  });
  const dir = path.join(root, 'com', 'acme', 'acme-lib', '1.0.0');
  mkdirSync(dir, { recursive: true });
  await runOk(
    requireClient('jar', 'apt-get install openjdk-17-jdk-headless'),
    ['cf', path.join(dir, 'acme-lib-1.0.0.jar'), '-C', classes, '.'],
    { cwd: src, env },
  );
  writeFileSync(
    path.join(dir, 'acme-lib-1.0.0.pom'),
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<project xmlns="http://maven.apache.org/POM/4.0.0">',
      '  <modelVersion>4.0.0</modelVersion>',
      '  <groupId>com.acme</groupId><artifactId>acme-lib</artifactId><version>1.0.0</version><packaging>jar</packaging>',
      '</project>',
      '',
    ].join('\n'),
  );
  for (const file of ['acme-lib-1.0.0.jar', 'acme-lib-1.0.0.pom']) {
    const sha1 = createHash('sha1')
      .update(readFileSync(path.join(dir, file)))
      .digest('hex');
    writeFileSync(path.join(dir, `${file}.sha1`), sha1);
  }
}

/** A fresh HOME with settings.xml (mirror * → gateway, server credentials) and a trivial project using acme-lib. */
function mavenProject(label: string, credentials: { username: string; password: string } | undefined) {
  const home = freshHome(label);
  const settings = home.write(
    '.m2/settings.xml',
    [
      '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">',
      '  <mirrors>',
      `    <mirror><id>tollgate</id><mirrorOf>*</mirrorOf><url>${gw.url}/maven/</url></mirror>`,
      '  </mirrors>',
      credentials
        ? `  <servers><server><id>tollgate</id><username>${credentials.username}</username><password>${credentials.password}</password></server></servers>`
        : '',
      '</settings>',
      '',
    ].join('\n'),
  );
  const proj = home.dir('proj');
  writeFileSync(
    path.join(proj, 'pom.xml'),
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<project xmlns="http://maven.apache.org/POM/4.0.0">',
      '  <modelVersion>4.0.0</modelVersion>',
      '  <groupId>com.example</groupId><artifactId>consumer</artifactId><version>1.0.0</version>',
      '  <properties>',
      '    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>',
      '    <maven.compiler.source>17</maven.compiler.source><maven.compiler.target>17</maven.compiler.target>',
      '  </properties>',
      '  <dependencies>',
      '    <dependency><groupId>com.acme</groupId><artifactId>acme-lib</artifactId><version>1.0.0</version></dependency>',
      '  </dependencies>',
      // Versions whose whole closure the machine's ~/.m2 holds (Maven 3.8's default bindings,
      // resources 2.6 and compiler 3.1, have jars missing there).
      '  <build><plugins>',
      `    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>${RESOURCES_PLUGIN}</version></plugin>`,
      `    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>${COMPILER_PLUGIN}</version></plugin>`,
      '  </plugins></build>',
      '</project>',
      '',
    ].join('\n'),
  );
  const javaFile = path.join(proj, 'src', 'main', 'java', 'com', 'example', 'App.java');
  mkdirSync(path.dirname(javaFile), { recursive: true });
  writeFileSync(
    javaFile,
    'package com.example;\npublic class App {\n  public static String name() { return com.acme.Lib.name(); }\n}\n',
  );
  const repo = home.dir('m2-local');
  const env = clientEnv(home, { MAVEN_OPTS: `-Duser.home=${home.path}`, JAVA_HOME: process.env.JAVA_HOME });
  const args = ['-B', '--strict-checksums', '-s', settings, `-Dmaven.repo.local=${repo}`, 'compile'];
  return { home, proj, repo, env, args };
}

describe('Maven through the gateway', () => {
  it('resolves plugins and com.acme:acme-lib with strict checksums, answering challenges with the <server> credentials', async () => {
    const { proj, repo, env, args } = mavenProject('mvn-ok', { username: 'java-team', password: gw.token });
    const mark = await gw.mark();
    const r = await run(mvn, args, { cwd: proj, env, timeoutMs: 300_000 });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toContain('BUILD SUCCESS');
    expect(existsSync(path.join(proj, 'target', 'classes', 'com', 'example', 'App.class'))).toBe(true);
    expect(existsSync(path.join(repo, 'com', 'acme', 'acme-lib', '1.0.0', 'acme-lib-1.0.0.jar'))).toBe(true);

    // Every download Maven reports is from the gateway's /maven/ route.
    const downloads = urlsIn(
      r.stdout
        .split('\n')
        .filter((l) => /Downloaded from/.test(l))
        .join('\n'),
    );
    expect(downloads.length, r.stdout).toBeGreaterThan(10);
    for (const u of downloads) expect(u).toMatch(new RegExp(`^${gw.url}/maven/`));
    expect(downloads).toContain(`${gw.url}/maven/com/acme/acme-lib/1.0.0/acme-lib-1.0.0.jar`);

    const log = await gw.requestsSince(mark);
    const challenges = log.filter((l) => l.status === 401);
    // Maven asks without credentials first and retries after the challenge: 401s with no token.
    expect(challenges.length).toBeGreaterThan(0);
    for (const c of challenges) expect(c, JSON.stringify(c)).toMatchObject({ authFailure: 'missing' });
    const served = log.filter((l) => l.status !== 401);
    expect(served.length).toBeGreaterThan(0);
    for (const l of served) expect(l, JSON.stringify(l)).toMatchObject({ tokenId: gw.tokenId, project: 'java-team' });
    expect(log.some((l) => l.path.endsWith('acme-lib-1.0.0.jar.sha1') && l.status === 200)).toBe(true);

    // Challenges are counted as challenges, never as failed authentications: every 401 without a
    // credential in the log so far (Maven's, and the test's own log marks) is one challenge.
    const metrics = await gw.metrics();
    expect(metricValue(metrics, 'tollgate_auth_challenges_total')).toBe(
      requestLog(gw.gateway).filter((l) => l.authFailure === 'missing').length,
    );
    expect(metricValue(metrics, 'tollgate_auth_failures_total'), metrics).toBe(0);
  });

  it.each([
    {
      credential: 'a wrong token',
      server: (): { username: string; password: string } => ({ username: 'java-team', password: gw.wrongToken }),
    },
    { credential: 'no token', server: (): undefined => undefined },
  ])('refuses mvn with $credential: the build fails, the gateway answers 401', async ({ server }) => {
    const { proj, repo, env, args } = mavenProject('mvn-refused', server());
    const mark = await gw.mark();
    const r = await run(mvn, args, { cwd: proj, env, timeoutMs: 120_000 });
    expect(r.code, r.output).not.toBe(0);
    expect(r.stdout).toMatch(/401|Unauthorized|status code: 401/);
    expect(existsSync(path.join(proj, 'target', 'classes'))).toBe(false);
    expect(
      existsSync(path.join(repo, 'org', 'apache', 'maven', 'plugins', 'maven-compiler-plugin')) &&
        existsSync(path.join(repo, 'com', 'acme', 'acme-lib', '1.0.0', 'acme-lib-1.0.0.jar')),
    ).toBe(false);
    expectAllRefused(await gw.requestsSince(mark));
  });

  it('the upstream saw only requests the gateway forwarded', () => expectOnlyForwarded(gw, upstream));
});
