// RefExi: a small command-line driver around EXIficient (the EXICodec.jar that the PyPI package
// iso15118==0.31.2 ships, with the ISO 15118 grammars precompiled into it), used by this
// project's tests as the reference EXI codec. It is a test oracle only, never a dependency.
//
// Codec settings, as ISO 15118 deployments configure EXIficient: schema-informed (the grammars
// built into the jar), default fidelity options (not strict), no value string table
// (valueMaxLength 0, valuePartitionCapacity 0), no built-in element grammars or productions.
//
//   java -cp EXICodec.jar:DIR RefExi encode SCHEMA IN.xml OUT.exi [fragment]
//   java -cp EXICodec.jar:DIR RefExi decode SCHEMA IN.exi OUT.xml [fragment]
//   java -cp EXICodec.jar:DIR RefExi batch            one job a line on stdin (the two forms above
//                                                     without "java ... RefExi"); answers one line
//                                                     per job: "OK <job>" or "ERR <job> :: <why>"
//   java -cp EXICodec.jar:DIR RefExi schemas          lists the schema keys
//
// Exit status (single job): 0 done, 1 the codec refused the input, 2 usage error.
import com.siemens.ct.exi.core.EXIFactory;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.core.helpers.DefaultEXIFactory;
import com.siemens.ct.exi.main.api.sax.EXIResult;
import com.siemens.ct.exi.main.api.sax.EXISource;

import java.io.BufferedReader;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.xml.parsers.SAXParserFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.sax.SAXSource;
import javax.xml.transform.stream.StreamResult;
import org.xml.sax.InputSource;
import org.xml.sax.XMLReader;

public final class RefExi {
    /** Schema key (the project's vocabulary) -> grammar class generated into EXICodec.jar. */
    private static final Map<String, String> GRAMMAR_CLASS = new LinkedHashMap<>();
    static {
        String pkg = "com.siemens.ct.exi.main.generatedgrammar.";
        GRAMMAR_CLASS.put("sap", pkg + "CommonAppProtocol");
        GRAMMAR_CLASS.put("common", pkg + "ISO15118_20_V2G_CI_CommonMessages");
        GRAMMAR_CLASS.put("ac", pkg + "ISO15118_20_V2G_CI_AC");
        GRAMMAR_CLASS.put("dc", pkg + "ISO15118_20_V2G_CI_DC");
        GRAMMAR_CLASS.put("acdp", pkg + "ISO15118_20_V2G_CI_ACDP");
        GRAMMAR_CLASS.put("wpt", pkg + "ISO15118_20_V2G_CI_WPT");
        GRAMMAR_CLASS.put("xmldsig", pkg + "XMLDSIG_Core_Schema_Grammar");
        GRAMMAR_CLASS.put("iso2", pkg + "ISO15118_2Grammar");
        GRAMMAR_CLASS.put("din", pkg + "DINSpec_70121");
    }

    /** Thrown for a malformed job line (usage), as opposed to an input the codec refuses. */
    private static final class Usage extends Exception {
        Usage(String message) { super(message); }
    }

    private static final Map<String, EXIFactory> FACTORIES = new ConcurrentHashMap<>();
    private static final SAXParserFactory XML_PARSERS = SAXParserFactory.newInstance();
    private static final TransformerFactory TRANSFORMERS = TransformerFactory.newInstance();
    static { XML_PARSERS.setNamespaceAware(true); }

    private RefExi() {}

    /** The codec settings for one schema key and mode, made once and reused. */
    private static EXIFactory settings(String schema, boolean fragment) throws Exception {
        String key = fragment ? schema + "/fragment" : schema;
        EXIFactory known = FACTORIES.get(key);
        if (known != null) return known;
        String className = GRAMMAR_CLASS.get(schema);
        if (className == null) throw new Usage("unknown schema key '" + schema + "' (one of " + GRAMMAR_CLASS.keySet() + ")");
        Grammars grammars = (Grammars) Class.forName(className).getDeclaredConstructor().newInstance();
        EXIFactory f = DefaultEXIFactory.newInstance();   // default fidelity options: not strict
        f.setGrammars(grammars);
        f.setFragment(fragment);
        f.setValueMaxLength(0);
        f.setValuePartitionCapacity(0);
        f.setMaximumNumberOfBuiltInElementGrammars(0);
        f.setMaximumNumberOfBuiltInProductions(0);
        FACTORIES.put(key, f);
        return f;
    }

    private static byte[] encode(EXIFactory f, InputStream xml) throws Exception {
        ByteArrayOutputStream exi = new ByteArrayOutputStream();
        EXIResult sink = new EXIResult(f);
        sink.setOutputStream(exi);
        XMLReader parser = XML_PARSERS.newSAXParser().getXMLReader();
        parser.setContentHandler(sink.getHandler());
        parser.parse(new InputSource(xml));
        return exi.toByteArray();
    }

    private static void decode(EXIFactory f, InputStream exi, OutputStream xml) throws Exception {
        XMLReader events = new EXISource(f).getXMLReader();
        TRANSFORMERS.newTransformer().transform(new SAXSource(events, new InputSource(exi)), new StreamResult(xml));
    }

    /** Runs one job given as words: op schema in out [fragment]. */
    private static void job(String[] w) throws Exception {
        if (w.length < 4 || w.length > 5 || (w.length == 5 && !w[4].equals("fragment"))) {
            throw new Usage("expected: encode|decode SCHEMA IN OUT [fragment]");
        }
        EXIFactory f = settings(w[1], w.length == 5);
        switch (w[0]) {
            case "encode": {
                byte[] exi;
                try (InputStream in = new BufferedInputStream(Files.newInputStream(Paths.get(w[2])))) {
                    exi = encode(f, in);
                }
                Files.write(Paths.get(w[3]), exi);
                break;
            }
            case "decode": {
                try (InputStream in = new BufferedInputStream(Files.newInputStream(Paths.get(w[2])));
                     OutputStream out = Files.newOutputStream(Paths.get(w[3]))) {
                    decode(f, in, out);
                }
                break;
            }
            default:
                throw new Usage("unknown operation '" + w[0] + "' (encode or decode)");
        }
    }

    private static String oneLine(Throwable t) {
        String s = t.toString();
        return s.replace('\r', ' ').replace('\n', ' ');
    }

    private static int batch() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String job = line.trim();
            if (job.isEmpty() || job.startsWith("#")) continue;
            String answer;
            try {
                job(job.split("\\s+"));
                answer = "OK " + job;
            } catch (Exception | StackOverflowError e) {
                answer = "ERR " + job + " :: " + oneLine(e);
            }
            System.out.println(answer);
            System.out.flush();
        }
        return 0;
    }

    public static void main(String[] args) {
        int status;
        try {
            if (args.length == 1 && args[0].equals("batch")) {
                status = batch();
            } else if (args.length == 1 && args[0].equals("schemas")) {
                System.out.println(String.join(" ", GRAMMAR_CLASS.keySet()));
                status = 0;
            } else {
                job(args);
                status = 0;
            }
        } catch (Usage u) {
            System.err.println("RefExi: " + u.getMessage());
            status = 2;
        } catch (Exception e) {
            System.err.println("RefExi: " + oneLine(e));
            status = 1;
        }
        System.exit(status);
    }
}
