/**
 * Every form a secret takes in text that reaches a log, an error or a page, each with a
 * planted secret of its own (unique strings that appear nowhere else), for the redaction
 * unit tests and the secrets sweep over real processes (faults-secrets.test.ts).
 */

export interface SecretForm {
  name: string;
  /** The text as a server, a library or our own code might produce it. */
  text: string;
  /** The planted secrets in it: none may survive redaction. */
  secrets: string[];
  /** Text around them that must survive (redaction replaces values, not context). */
  keeps?: string[];
}

export const SECRET_FORMS: SecretForm[] = [
  {
    name: 'x-amz-security-token header',
    text: 'x-amz-security-token: IQoJb3JpZ2luX2VjPLANTsectokHDR01/+abc=',
    secrets: ['IQoJb3JpZ2luX2VjPLANTsectokHDR01'],
    keeps: ['x-amz-security-token'],
  },
  {
    name: 'X-Amz-Security-Token query parameter',
    text: 'PUT https://s3.example.com/b/k?partNumber=1&X-Amz-Security-Token=FwoGZXIvPLANTsectokQRY02%2Fabc&uploadId=u1',
    secrets: ['FwoGZXIvPLANTsectokQRY02'],
    keeps: ['partNumber=1', 'uploadId=u1'],
  },
  {
    name: 'Authorization: Bearer',
    text: 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.PLANTbearer03.c2ln',
    secrets: ['eyJhbGciOiJIUzI1NiJ9.PLANTbearer03', 'PLANTbearer03'],
    keeps: ['Authorization'],
  },
  {
    name: 'Authorization: AWS4-HMAC-SHA256',
    text: 'Authorization: AWS4-HMAC-SHA256 Credential=AKIAPLANTAWSSIGV404/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6PLANT04',
    secrets: ['AKIAPLANTAWSSIGV404', '5d672d79c15b13162d9279b0855cfba6PLANT04'],
  },
  {
    name: 'Credential= and Signature= in free text',
    text: 'the request carried Credential=ASIAPLANTCREDENT505/20260101/us-east-1/s3/aws4_request, Signature=a1b2c3PLANTsig05',
    secrets: ['ASIAPLANTCREDENT505', 'a1b2c3PLANTsig05'],
    keeps: ['the request carried'],
  },
  {
    name: 'STS XML credentials',
    text: '<Credentials><AccessKeyId>ASIAPLANTXMLKEYID06</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI/K7MDENG/PLANTxmlsecret06</SecretAccessKey><SessionToken>FQoGZXIvYXdzEPLANTxmltoken06</SessionToken></Credentials>',
    secrets: ['ASIAPLANTXMLKEYID06', 'PLANTxmlsecret06', 'FQoGZXIvYXdzEPLANTxmltoken06'],
    keeps: ['<SessionToken>', '</SecretAccessKey>'],
  },
  {
    name: 'S3 SignatureDoesNotMatch echo',
    text: '<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>ASIAPLANTECHOKEY707</AWSAccessKeyId><SignatureProvided>9f86d081PLANTsigprov07</SignatureProvided><CanonicalRequest>PUT\n/b/k\npartNumber=1\nhost:s3.example.com\nx-amz-security-token:IQoJPLANTcanontoken07\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD</CanonicalRequest></Error>',
    secrets: ['ASIAPLANTECHOKEY707', '9f86d081PLANTsigprov07', 'IQoJPLANTcanontoken07'],
    keeps: ['SignatureDoesNotMatch'],
  },
  {
    name: 'presigned URL',
    text: 'GET https://jcds.example.com/b/Firefox.pkg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAPLANTPRESIGN808%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=e3b0c442PLANTpresig08 answered 403',
    secrets: ['ASIAPLANTPRESIGN808', 'e3b0c442PLANTpresig08'],
    keeps: ['X-Amz-Expires=300', 'Firefox.pkg'],
  },
  {
    name: 'JSON credential fields',
    text: '{"accessKeyID":"ASIAPLANTJSONKEY909","secretAccessKey":"PLANTjsonsecret09","sessionToken":"PLANTjsontoken09","client_secret":"PLANTjsonclient09","access_token":"PLANTjsonaccess09","password":"PLANTjsonpw09","region":"us-east-1"}',
    secrets: [
      'ASIAPLANTJSONKEY909',
      'PLANTjsonsecret09',
      'PLANTjsontoken09',
      'PLANTjsonclient09',
      'PLANTjsonaccess09',
      'PLANTjsonpw09',
    ],
    keeps: ['"region":"us-east-1"'],
  },
  {
    name: 'JSON inside a JSON string',
    text: '{"body":"{\\"access_token\\":\\"PLANTescaped10\\",\\"expires_in\\":1799}"}',
    secrets: ['PLANTescaped10'],
    keeps: ['expires_in'],
  },
  {
    name: 'object text (util.inspect)',
    text: "{ sessionToken: 'PLANTinspect11', secretAccessKey: 'PLANTinspectsecret11', bucket: 'jcds' }",
    secrets: ['PLANTinspect11', 'PLANTinspectsecret11'],
    keeps: ["bucket: 'jcds'"],
  },
  {
    name: 'form body',
    text: 'grant_type=client_credentials&client_id=fleet&client_secret=PLANTform12&password=PLANTformpw12',
    secrets: ['PLANTform12', 'PLANTformpw12'],
    keeps: ['grant_type=client_credentials', 'client_id=fleet'],
  },
  {
    name: 'Basic auth in a URL',
    text: 'connect https://admin:PLANTurlpw13@jamf.example.com:8443/api and redis://:PLANTredispw13@10.0.0.5:6379/0',
    secrets: ['PLANTurlpw13', 'PLANTredispw13'],
    keeps: ['jamf.example.com:8443/api', '10.0.0.5:6379/0'],
  },
  {
    name: 'Authorization: Basic',
    text: 'authorization: Basic YWRtaW46UExBTlRiYXNpYzE0',
    secrets: ['YWRtaW46UExBTlRiYXNpYzE0'],
  },
  {
    name: 'Cookie header',
    text: 'Cookie: APBALANCEID=aws.usw2; JSESSIONID=PLANTcookie15',
    secrets: ['PLANTcookie15'],
  },
  {
    name: 'a setting as typed',
    text: 'started with JCDS_FLEET_SECRET=PLANTsetting16 and JAMF_CLIENT_SECRET=PLANTsetting16b',
    secrets: ['PLANTsetting16', 'PLANTsetting16b'],
    keeps: ['started with'],
  },
];

/** Every planted secret of every form. */
export function plantedSecrets(): string[] {
  return SECRET_FORMS.flatMap(f => f.secrets);
}

/** All forms in one text, one a line (what a fault plants in one error). */
export function allForms(): string {
  return SECRET_FORMS.map(f => f.text).join('\n');
}
